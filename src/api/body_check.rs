//! Request bodies checked against the OpenAPI spec before an operation parses them, so
//! that every refusal names its field: a known property that is `null`, missing while
//! required, or of the wrong JSON type is an issue at its path (`name`,
//! `metadata.organizationId`, `scope.projectIds[0]`). Properties the spec does not name
//! are ignored, whatever their value, as the spec allows. Limits on values (lengths,
//! ranges, patterns) are the domain's to check.
//!
//! The schemas are built once from the spec; a check parses the body with serde's
//! streaming deserializer, guided by the schema, and builds no JSON tree: it allocates
//! only the issues it reports (and, for an object with more than 64 known properties,
//! a list of those present).

use std::collections::HashMap;
use std::fmt::{self, Write};

use poem::http::{HeaderMap, header};
use poem_openapi::error::ParseRequestPayloadError;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::{ApiError, ErrorCode, ErrorIssue};
use crate::error::Invalid;

/// At most this many issues are reported for one body.
pub const MAX_ISSUES: usize = 20;
/// How deep `$ref`s and `allOf`s are followed when the table is built (the spec has no
/// recursive request type; this only guards against one).
const MAX_SCHEMA_DEPTH: usize = 32;

/// The JSON type a schema asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    String,
    /// A number written without fraction or exponent, within the range of its format
    /// (`int32`, `int64`), if it has one.
    Integer(Option<Bits>),
    Number,
    Boolean,
    Array,
    Object,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bits {
    B32,
    B64,
}

impl Bits {
    fn holds(self, v: i128) -> bool {
        match self {
            Bits::B32 => i32::try_from(v).is_ok(),
            Bits::B64 => i64::try_from(v).is_ok(),
        }
    }

    fn holds_f64(self, v: f64) -> bool {
        let half = match self {
            Bits::B32 => 2f64.powi(31),
            Bits::B64 => 2f64.powi(63),
        };
        (-half..half).contains(&v)
    }

    fn message(self) -> &'static str {
        match self {
            Bits::B32 => "must be a 32-bit integer",
            Bits::B64 => "must be a 64-bit integer",
        }
    }
}

impl Type {
    fn parse(name: &str, format: Option<&str>) -> Option<Type> {
        Some(match name {
            "string" => Type::String,
            "integer" => Type::Integer(match format {
                Some("int32") => Some(Bits::B32),
                Some("int64") => Some(Bits::B64),
                _ => None,
            }),
            "number" => Type::Number,
            "boolean" => Type::Boolean,
            "array" => Type::Array,
            "object" => Type::Object,
            _ => return None,
        })
    }

    fn expected(self) -> &'static str {
        match self {
            Type::String => "must be a string",
            Type::Integer(_) => "must be an integer",
            Type::Number => "must be a number",
            Type::Boolean => "must be a boolean",
            Type::Array => "must be an array",
            Type::Object => "must be an object",
        }
    }
}

/// What the checker knows of one schema. `ty: None` accepts any value (a schema without
/// a type, or one the checker does not follow, such as `oneOf`).
#[derive(Debug, Clone, Default)]
struct Schema {
    ty: Option<Type>,
    nullable: bool,
    properties: Vec<Property>,
    items: Option<Box<Schema>>,
}

#[derive(Debug, Clone)]
struct Property {
    name: String,
    required: bool,
    schema: Schema,
}

impl Schema {
    /// `node` of the spec `root`, with `$ref`s resolved and `allOf`s merged.
    fn build(node: &Value, root: &Value, depth: usize) -> Schema {
        if depth > MAX_SCHEMA_DEPTH {
            return Schema::default();
        }
        if let Some(target) = node.get("$ref").and_then(Value::as_str) {
            return match target.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(t) => Schema::build(t, root, depth + 1),
                None => Schema::default(),
            };
        }
        if node.get("oneOf").is_some() || node.get("anyOf").is_some() {
            return Schema::default();
        }
        let format = node.get("format").and_then(Value::as_str);
        let mut nullable = node.get("nullable") == Some(&Value::Bool(true));
        let ty = match node.get("type") {
            Some(Value::String(t)) => Type::parse(t, format),
            // OpenAPI 3.1 writes `["string", "null"]`.
            Some(Value::Array(types)) => {
                let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                nullable |= names.contains(&"null");
                match names.iter().filter(|&&t| t != "null").collect::<Vec<_>>()[..] {
                    [one] => Type::parse(one, format),
                    _ => None,
                }
            }
            _ => None,
        };
        let required: Vec<&str> = node
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut s = Schema {
            ty,
            nullable,
            properties: Vec::new(),
            items: node
                .get("items")
                .map(|i| Box::new(Schema::build(i, root, depth + 1))),
        };
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                // A read-only property is never sent, so never required of a request.
                let read_only = p.get("readOnly") == Some(&Value::Bool(true));
                s.properties.push(Property {
                    name: name.clone(),
                    required: required.contains(&name.as_str()) && !read_only,
                    schema: Schema::build(p, root, depth + 1),
                });
            }
        }
        for name in required {
            if !s.properties.iter().any(|p| p.name == name) {
                s.properties.push(Property {
                    name: name.to_owned(),
                    required: true,
                    schema: Schema::default(),
                });
            }
        }
        if let Some(parts) = node.get("allOf").and_then(Value::as_array) {
            for part in parts {
                s.merge(Schema::build(part, root, depth + 1));
            }
        }
        s
    }

    /// What a value must be to satisfy both `self` and `other` (as far as the checker
    /// follows it).
    fn merge(&mut self, other: Schema) {
        // `null` passes only where every part with a type allows it.
        self.nullable = match (self.ty, other.ty) {
            (None, None) => self.nullable || other.nullable,
            (Some(_), None) => self.nullable,
            (None, Some(_)) => other.nullable,
            (Some(_), Some(_)) => self.nullable && other.nullable,
        };
        self.ty = self.ty.or(other.ty);
        if self.items.is_none() {
            self.items = other.items;
        }
        for p in other.properties {
            match self.properties.iter_mut().find(|q| q.name == p.name) {
                Some(q) => q.required |= p.required,
                None => self.properties.push(p),
            }
        }
    }
}

/// The request body schema of every operation that takes a JSON body, by path.
#[derive(Debug, Default)]
pub struct BodyCheck {
    bodies: HashMap<String, Schema>,
}

impl BodyCheck {
    /// Builds the table from the spec's JSON text (`OpenApiService::spec`).
    pub fn from_spec(spec: &str) -> BodyCheck {
        let root: Value = serde_json::from_str(spec).unwrap_or_default();
        let mut bodies = HashMap::new();
        let paths = root.get("paths").and_then(Value::as_object);
        for (path, ops) in paths.into_iter().flatten() {
            let Some(content) = ops.pointer("/post/requestBody/content") else {
                continue;
            };
            let json = content
                .as_object()
                .into_iter()
                .flatten()
                .find(|(media, _)| is_json_media_type(media));
            if let Some(schema) = json.and_then(|(_, m)| m.get("schema")) {
                bodies.insert(path.clone(), Schema::build(schema, &root, 0));
            }
        }
        BodyCheck { bodies }
    }

    /// Checks `body`, sent as JSON to `path`, against the operation's schema. A path that
    /// takes no JSON body is not checked. A body that is not JSON at all is 400
    /// `bad_request`; one that does not match the schema is 400 `validation_failed`
    /// with an issue per field.
    pub fn check(&self, path: &str, body: &[u8]) -> Result<(), ApiError> {
        let Some(schema) = self.bodies.get(path) else {
            return Ok(());
        };
        let mut issues = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(body);
        let walked = Walk {
            schema: Some(schema),
            at: &At::Body,
            issues: &mut issues,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = walked {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                Invalid::BadRequest.as_str(),
                format!("The request body is not valid JSON: {e}"),
            ));
        }
        if issues.is_empty() {
            return Ok(());
        }
        let message = issues
            .iter()
            .map(|i: &ErrorIssue| format!("{}: {}", i.path, i.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = ApiError::new(
            ErrorCode::BadRequest,
            Invalid::ValidationFailed.as_str(),
            message,
        );
        e.body.issues = issues;
        Err(e)
    }
}

/// Whether a media type is JSON as poem-openapi's `Json` payload takes it
/// (`application/json`, `application/*+json`, any case and parameters).
fn is_json_media_type(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or_default().trim();
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    ty.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub
                .rsplit_once('+')
                .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json")))
}

/// Whether a request's body is one the operation would parse as JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type)
}

/// A parse error of poem-openapi that still reached an operation: a body the checker let
/// pass but the operation's types could not take. Its text names Rust types, so it is
/// logged, not sent.
pub fn unparsed_body(e: ParseRequestPayloadError) -> ApiError {
    tracing::debug!(reason = %e.reason, "a request body passed the schema check but not parsing");
    let mut out = ApiError::new(
        ErrorCode::BadRequest,
        Invalid::ValidationFailed.as_str(),
        "body: does not match the schema of this operation",
    );
    out.body.issues = vec![ErrorIssue {
        path: "body".to_owned(),
        message: "does not match the schema of this operation".to_owned(),
    }];
    out
}

/// Where a value sits in the body, as a chain on the stack: rendered only for an issue.
enum At<'a> {
    Body,
    Field(&'a At<'a>, &'a str),
    Item(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self, out: &mut String) {
        match self {
            At::Body => {}
            At::Field(parent, name) => {
                parent.render(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            At::Item(parent, i) => {
                parent.render(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }

    fn path(&self) -> String {
        let mut out = String::new();
        self.render(&mut out);
        if out.is_empty() {
            out.push_str("body");
        }
        out
    }
}

fn report(issues: &mut Vec<ErrorIssue>, at: &At<'_>, message: &str) {
    if issues.len() < MAX_ISSUES {
        issues.push(ErrorIssue {
            path: at.path(),
            message: message.to_owned(),
        });
    }
}

/// One value of the body against its schema (`None`: a property the spec does not name,
/// read and ignored).
struct Walk<'s, 'a, 'i> {
    schema: Option<&'s Schema>,
    at: &'a At<'a>,
    issues: &'i mut Vec<ErrorIssue>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.schema {
            None => d.deserialize_ignored_any(IgnoredAny).map(drop),
            Some(_) => d.deserialize_any(self),
        }
    }
}

impl Walk<'_, '_, '_> {
    /// Reports the value as not of the expected type, when the schema names one.
    fn mismatch(self) {
        if let Some(ty) = self.schema.and_then(|s| s.ty) {
            report(self.issues, self.at, ty.expected());
        }
    }

    fn is(&self, want: fn(Type) -> bool) -> bool {
        self.schema.and_then(|s| s.ty).is_none_or(want)
    }

    fn integer(self, v: i128) {
        match self.schema.and_then(|s| s.ty) {
            Some(Type::Integer(Some(bits))) if !bits.holds(v) => {
                report(self.issues, self.at, bits.message());
            }
            Some(Type::Integer(_) | Type::Number) | None => {}
            Some(_) => self.mismatch(),
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        let Some(schema) = self.schema else {
            return Ok(());
        };
        match schema.ty {
            None => {}
            Some(_) if schema.nullable => {}
            Some(ty) if matches!(self.at, At::Body) => report(self.issues, self.at, ty.expected()),
            Some(_) => report(self.issues, self.at, "must not be null"),
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        if !self.is(|t| t == Type::Boolean) {
            self.mismatch();
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.integer(v.into());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.integer(v.into());
        Ok(())
    }

    /// A number with a fraction or an exponent, or too large for 64 bits.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match self.schema.and_then(|s| s.ty) {
            Some(Type::Number) | None => {}
            // Without a format, any whole number is an integer.
            Some(Type::Integer(None)) if v.fract() == 0.0 => {}
            Some(Type::Integer(Some(bits))) if v.fract() == 0.0 && !bits.holds_f64(v) => {
                report(self.issues, self.at, bits.message());
            }
            Some(_) => self.mismatch(),
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        if !self.is(|t| t == Type::String) {
            self.mismatch();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.is(|t| t == Type::Array) {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            self.mismatch();
            return Ok(());
        }
        let items = self.schema.and_then(|s| s.items.as_deref());
        let mut i = 0;
        loop {
            let at = At::Item(self.at, i);
            let item = Walk {
                schema: items,
                at: &at,
                issues: &mut *self.issues,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if !self.is(|t| t == Type::Object) {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            self.mismatch();
            return Ok(());
        }
        let props: &[Property] = self.schema.map_or(&[], |s| &s.properties);
        let mut seen = Seen::new(props.len());
        while let Some(known) = map.next_key_seed(Key(props))? {
            let Some(i) = known else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            seen.set(i);
            let p = &props[i];
            let at = At::Field(self.at, &p.name);
            map.next_value_seed(Walk {
                schema: Some(&p.schema),
                at: &at,
                issues: &mut *self.issues,
            })?;
        }
        for (i, p) in props.iter().enumerate() {
            if p.required && !seen.get(i) {
                report(self.issues, &At::Field(self.at, &p.name), "is required");
            }
        }
        Ok(())
    }
}

/// Which properties of an object were present: a word for up to 64 of them.
enum Seen {
    Few(u64),
    Many(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Seen {
        if n <= 64 {
            Seen::Few(0)
        } else {
            Seen::Many(vec![false; n])
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            Seen::Few(bits) => *bits |= 1 << i,
            Seen::Many(v) => v[i] = true,
        }
    }

    fn get(&self, i: usize) -> bool {
        match self {
            Seen::Few(bits) => bits & (1 << i) != 0,
            Seen::Many(v) => v[i],
        }
    }
}

/// An object's key, as the index of the property it names (`None`: one the spec does
/// not name). Read without copying it.
struct Key<'s>(&'s [Property]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a property name")
    }

    fn visit_str<E: de::Error>(self, k: &str) -> Result<Option<usize>, E> {
        Ok(self.0.iter().position(|p| p.name == k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(schema: Value, components: Value) -> BodyCheck {
        let spec = json!({
            "paths": {"/op": {"post": {"requestBody": {"content": {
                "application/json; charset=utf-8": {"schema": schema}
            }}}}},
            "components": {"schemas": components},
        });
        BodyCheck::from_spec(&spec.to_string())
    }

    fn issues(check: &BodyCheck, body: &str) -> Vec<(String, String)> {
        match check.check("/op", body.as_bytes()) {
            Ok(()) => Vec::new(),
            Err(e) => {
                assert_eq!(e.body.reason, "validation_failed", "{}", e.body.message);
                e.body
                    .issues
                    .into_iter()
                    .map(|i| (i.path, i.message))
                    .collect()
            }
        }
    }

    fn owned(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
            .collect()
    }

    fn key_spec() -> BodyCheck {
        table(
            json!({"$ref": "#/components/schemas/Key"}),
            json!({
                "Key": {"type": "object", "required": ["name", "metadata"], "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer", "format": "int64"},
                    "ratio": {"type": "number"},
                    "on": {"type": "boolean"},
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/Meta"},
                                           {"description": "d"}]},
                    "scope": {"allOf": [{"$ref": "#/components/schemas/Scope"}]},
                }},
                "Meta": {"type": "object", "required": ["organizationId"], "properties": {
                    "organizationId": {"type": "string"}}},
                "Scope": {"type": "object", "properties": {
                    "projectIds": {"type": "array", "items": {"type": "string"}}}},
            }),
        )
    }

    #[test]
    fn a_body_that_matches_passes_whatever_it_adds() {
        let c = key_spec();
        for body in [
            r#"{"name":"k","metadata":{"organizationId":"o"}}"#,
            r#"{"name":"k","metadata":{"organizationId":"o","x":null},"extra":null,
                "more":{"deep":[null,1]},"count":-5,"ratio":0.5,"on":true,
                "scope":{"projectIds":["a","b"]}}"#,
            r#"{"name":"k","metadata":{"organizationId":"o"},"count":9223372036854775807,
                "ratio":12}"#,
        ] {
            assert_eq!(issues(&c, body), [], "{body}");
        }
    }

    #[test]
    fn every_known_field_is_checked_at_its_path() {
        let c = key_spec();

        let got = issues(
            &c,
            r#"{"name":null,"metadata":{"organizationId":5},"count":1.5,"ratio":"x",
                "on":"yes","scope":{"projectIds":["a",7,null]}}"#,
        );

        assert_eq!(
            got,
            owned(&[
                ("name", "must not be null"),
                ("metadata.organizationId", "must be a string"),
                ("count", "must be an integer"),
                ("ratio", "must be a number"),
                ("on", "must be a boolean"),
                ("scope.projectIds[1]", "must be a string"),
                ("scope.projectIds[2]", "must not be null"),
            ])
        );
    }

    #[test]
    fn missing_required_fields_are_named_also_in_nested_objects() {
        let c = key_spec();

        assert_eq!(
            issues(&c, r#"{}"#),
            owned(&[("metadata", "is required"), ("name", "is required")])
        );
        assert_eq!(
            issues(&c, r#"{"name":"k","metadata":{}}"#),
            owned(&[("metadata.organizationId", "is required")])
        );
        assert_eq!(
            issues(&c, r#"{"name":"k","metadata":[]}"#),
            owned(&[("metadata", "must be an object")])
        );
    }

    #[test]
    fn a_body_that_is_no_object_is_one_issue_at_body() {
        let c = key_spec();
        for body in ["null", "[]", "\"s\"", "1", "true"] {
            assert_eq!(
                issues(&c, body),
                owned(&[("body", "must be an object")]),
                "{body}"
            );
        }
    }

    #[test]
    fn integers_outside_their_format_are_refused() {
        let c = key_spec();
        for body in [
            r#"{"name":"k","metadata":{"organizationId":"o"},"count":9223372036854775808}"#,
            r#"{"name":"k","metadata":{"organizationId":"o"},"count":-99999999999999999999}"#,
            r#"{"name":"k","metadata":{"organizationId":"o"},"count":1e30}"#,
        ] {
            assert_eq!(
                issues(&c, body),
                owned(&[("count", "must be a 64-bit integer")]),
                "{body}"
            );
        }
        assert_eq!(
            issues(
                &c,
                r#"{"name":"k","metadata":{"organizationId":"o"},"count":2.0}"#
            ),
            owned(&[("count", "must be an integer")])
        );
    }

    #[test]
    fn no_more_than_twenty_issues_are_listed() {
        let c = table(
            json!({"type": "object", "properties": {
                "ids": {"type": "array", "items": {"type": "string"}}}}),
            json!({}),
        );
        let body = json!({"ids": (0..100).collect::<Vec<i32>>()}).to_string();

        let got = issues(&c, &body);

        assert_eq!(got.len(), MAX_ISSUES);
        assert_eq!(got[19].0, "ids[19]");
    }

    #[test]
    fn a_body_that_is_not_json_is_a_bad_request_and_other_paths_are_not_checked() {
        let c = key_spec();
        for body in [
            "",
            "{",
            "{\"name\":\"k\"} x",
            "{\"name\":\"\\ud800\"}",
            "[[[[",
        ] {
            let e = c.check("/op", body.as_bytes()).unwrap_err();
            assert_eq!(e.body.reason, "bad_request", "{body}");
            assert!(e.body.issues.is_empty());
        }
        assert!(c.check("/elsewhere", b"{\"name\":null}").is_ok());
        assert!(c.check("/elsewhere", b"not json").is_ok());
    }

    #[test]
    fn nullable_and_untyped_schemas_take_null() {
        let c = table(
            json!({"type": "object", "properties": {
                "a": {"type": "string", "nullable": true},
                "b": {"type": ["string", "null"]},
                "c": {"description": "anything"},
                "d": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            }}),
            json!({}),
        );

        assert_eq!(issues(&c, r#"{"a":null,"b":null,"c":null,"d":null}"#), []);
        assert_eq!(issues(&c, r#"{"c":[1],"d":{}}"#), []);
        assert_eq!(
            issues(&c, r#"{"a":1,"b":2}"#),
            owned(&[("a", "must be a string"), ("b", "must be a string")])
        );
    }

    #[test]
    fn json_media_types_are_recognized_as_poem_openapi_does() {
        for media in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.keygate+json",
        ] {
            assert!(is_json_media_type(media), "{media}");
        }
        for media in ["text/json", "application/jsonp", "text/plain", "json", ""] {
            assert!(!is_json_media_type(media), "{media}");
        }
    }

    #[test]
    fn a_parse_error_that_gets_through_names_no_rust_type() {
        let e = unparsed_body(ParseRequestPayloadError {
            reason: r#"failed to parse "integer_int64": out of range (occurred while parsing "CreateApiKey")"#
                .to_owned(),
        });

        assert_eq!(e.body.reason, "validation_failed");
        assert_eq!(e.status(), 400);
        assert!(!e.body.message.contains('"'), "{}", e.body.message);
        assert!(!e.body.message.contains("int64"), "{}", e.body.message);
        assert_eq!(e.body.issues.len(), 1);
        assert_eq!(e.body.issues[0].path, "body");
    }

    /// Every request body of keygate's own spec is in the table, with its fields.
    #[test]
    fn the_table_holds_every_operation_that_takes_a_body() {
        let spec = crate::api::spec_json();
        let c = BodyCheck::from_spec(&spec);
        let root: Value = serde_json::from_str(&spec).unwrap();
        let with_body: Vec<&String> = root["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, ops)| ops.pointer("/post/requestBody").is_some())
            .map(|(p, _)| p)
            .collect();
        assert!(with_body.len() > 20, "{with_body:?}");
        for path in with_body {
            let s = &c.bodies[path.as_str()];
            assert_eq!(s.ty, Some(Type::Object), "{path}");
        }
        let key = &c.bodies["/api/user.createApiKey"];
        let meta = key
            .properties
            .iter()
            .find(|p| p.name == "metadata")
            .unwrap();
        assert!(meta.required);
        assert_eq!(meta.schema.ty, Some(Type::Object));
        assert_eq!(meta.schema.properties[0].name, "organizationId");
    }
}
