//! Request field types that document their limits in the spec and parse leniently, so
//! the domain can check every field and answer all problems at once in `issues`.
//!
//! `Text` accepts only JSON strings: poem-openapi's `String` also takes numbers and
//! booleans and turns them into text, so `{"name": 1}` would pass as "1".

use std::borrow::Cow;
use std::ops::Deref;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

/// A string of `MIN` to `MAX` characters (as documented; the domain checks them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<const MIN: usize = 0, const MAX: usize = { usize::MAX }>(pub String);

impl<const MIN: usize, const MAX: usize> Text<MIN, MAX> {
    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn strings(v: Vec<Self>) -> Vec<String> {
        v.into_iter().map(Self::into_inner).collect()
    }
}

impl<const MIN: usize, const MAX: usize> Deref for Text<MIN, MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

fn string_schema(min: usize, max: usize, pattern: Option<&str>, enums: &[&str]) -> MetaSchemaRef {
    MetaSchemaRef::Inline(Box::new(MetaSchema {
        min_length: (min > 0).then_some(min),
        max_length: (max < usize::MAX).then_some(max),
        pattern: pattern.map(str::to_owned),
        enum_items: enums
            .iter()
            .map(|e| Value::String((*e).to_owned()))
            .collect(),
        ..MetaSchema::new("string")
    }))
}

fn parse_string(value: Option<Value>) -> ParseResult<String> {
    match value.unwrap_or_default() {
        Value::String(s) => Ok(s),
        other => Err(ParseError::expected_type(other)),
    }
}

/// The parts of `Type` every string wrapper here shares.
macro_rules! string_type {
    ($ty:ty, $schema:expr, [$($gen:tt)*]) => {
        impl<$($gen)*> Type for $ty {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                $schema
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }

            fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl<$($gen)*> ParseFromJSON for $ty {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                parse_string(value).map(Self::from).map_err(ParseError::propagate)
            }
        }

        impl<$($gen)*> ToJSON for $ty {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

impl<const MIN: usize, const MAX: usize> From<String> for Text<MIN, MAX> {
    fn from(s: String) -> Self {
        Text(s)
    }
}

string_type!(Text<MIN, MAX>, string_schema(MIN, MAX, None, &[]), [const MIN: usize, const MAX: usize]);

/// A string documented by a pattern (and parsed leniently like `Text`).
macro_rules! pattern_type {
    ($(#[$doc:meta])* $name:ident, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        string_type!($name, string_schema(0, usize::MAX, Some($pattern), &[]), []);
    };
}

pattern_type!(
    /// An API key prefix: 1-32 of `[a-zA-Z0-9_-]`.
    KeyPrefix,
    "^[a-zA-Z0-9_-]{1,32}$"
);
pattern_type!(
    /// An application's technical name.
    AppNameText,
    "^[a-zA-Z0-9._-]{1,63}$"
);

/// A role that may be given to someone: `admin` or `member`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(pub String);

impl From<String> for RoleName {
    fn from(s: String) -> Self {
        RoleName(s)
    }
}

impl Deref for RoleName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

string_type!(
    RoleName,
    string_schema(0, usize::MAX, None, &["admin", "member"]),
    []
);

/// A whole number documented to lie in `MIN..=MAX` (the domain checks it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int<const MIN: i64 = { i64::MIN }, const MAX: i64 = { i64::MAX }>(pub i64);

impl<const MIN: i64, const MAX: i64> Type for Int<MIN, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "integer_int64".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            minimum: (MIN > i64::MIN).then_some(MIN as f64),
            maximum: (MAX < i64::MAX).then_some(MAX as f64),
            ..MetaSchema::new_with_format("integer", "int64")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromJSON for Int<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        i64::parse_from_json(value)
            .map(Int)
            .map_err(ParseError::propagate)
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromParameter for Int<MIN, MAX> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        i64::parse_from_parameter(value)
            .map(Int)
            .map_err(ParseError::propagate)
    }
}

impl<const MIN: i64, const MAX: i64> ToJSON for Int<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}
