//! The README's tables against the code: the errors and their `reason` values, the
//! configuration (flags, variables, defaults), the permission flags, who may call what
//! (the policy table), and the length limits the spec documents. Each test names the rows
//! that are missing, extra or different.

use std::collections::{BTreeMap, BTreeSet};

use clap::{ArgAction, CommandFactory};
use keygate::api::error::ApiError;
use keygate::cli::Cli;
use keygate::domain::policy::{Keys, Need, Needs, Org, TABLE};
use keygate::error::{Backoff, Clash, Error, Invalid, Reason, Throttle, Transport};
use keygate::store::orgs::AccessList;
use serde_json::Value;

const README: &str = include_str!("../README.md");

/// The rows of the first Markdown table after `heading` whose header row starts with
/// `first_column`: one `Vec` of trimmed cells per body row.
fn table(heading: &str, first_column: &str) -> Vec<Vec<String>> {
    let at = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has no heading {heading:?}"));
    let mut lines = README[at..].lines().skip_while(|l| {
        !(l.starts_with('|') && cells(l).first().is_some_and(|c| c == first_column))
    });
    assert!(
        lines.next().is_some(),
        "no table starting with {first_column:?} under {heading:?}"
    );
    lines
        .skip(1) // the |---| line
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect()
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// The `backticked` spans of a cell, in order.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// Fails with every problem at once, so one run names all the rows to fix.
fn report(what: &str, problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "the README's {what} differs from the code:\n  {}",
        problems.join("\n  ")
    );
}

fn status_code_reason(e: ApiError) -> (u16, String, String) {
    let body: Value = serde_json::from_str(&poem_openapi::types::ToJSON::to_json_string(&e.body))
        .expect("the error body is JSON");
    (
        e.status().as_u16(),
        body["code"].as_str().expect("a code").to_owned(),
        e.body.reason,
    )
}

/// The status a refusal of the HTTP layer is answered with.
fn transport_status(t: Transport) -> u16 {
    match t {
        Transport::NotFound => 404,
        Transport::MethodNotAllowed => 405,
        Transport::BodyTimeout => 408,
        Transport::PayloadTooLarge => 413,
        Transport::UnsupportedMediaType => 415,
        Transport::Internal => 500,
        Transport::ServerBusy => 503,
        Transport::StorageFull => 507,
    }
}

/// Status → (code, reasons), from the error enums through the one mapping to HTTP.
fn errors_in_code() -> BTreeMap<u16, (String, BTreeSet<String>)> {
    let mut answers: Vec<ApiError> = Vec::new();
    answers.extend(Reason::ALL.iter().map(|&r| Error::Denied(r).into()));
    answers.extend(
        Throttle::ALL
            .iter()
            .map(|&t| Error::Throttled(t, Backoff::one_second(1)).into()),
    );
    answers.extend(Invalid::ALL.iter().map(|&i| Error::invalid(i, "").into()));
    answers.extend(Clash::ALL.iter().map(|&c| Error::conflict(c, "").into()));
    for &t in Transport::ALL {
        let e = match t {
            Transport::StorageFull => Error::StorageFull.into(),
            Transport::Internal => Error::internal("cause").into(),
            _ => {
                let status = poem::http::StatusCode::from_u16(transport_status(t)).unwrap();
                let mut e = ApiError::from_poem(status, String::new());
                e.body.reason = t.as_str().to_owned();
                e
            }
        };
        answers.push(e);
    }
    answers.push(Error::NotFound("thing").into());
    let mut out: BTreeMap<u16, (String, BTreeSet<String>)> = BTreeMap::new();
    for (status, code, reason) in answers.into_iter().map(status_code_reason) {
        let entry = out
            .entry(status)
            .or_insert_with(|| (code.clone(), BTreeSet::new()));
        assert_eq!(entry.0, code, "status {status} has two codes");
        entry.1.insert(reason);
    }
    out
}

fn is_reason(span: &str) -> bool {
    // `issues` names the body's field, not a reason.
    span != "issues" && !span.is_empty() && span.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

#[test]
fn the_errors_table_lists_every_status_code_and_reason_the_server_answers_with() {
    let code = errors_in_code();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for row in table("## Errors", "Status") {
        let Ok(status) = row[0].parse::<u16>() else {
            problems.push(format!("row {:?}: the status is not a number", row[0]));
            continue;
        };
        seen.insert(status);
        let readme_code = code_spans(&row[1]).concat();
        let readme_reasons: BTreeSet<String> = code_spans(&row[2])
            .into_iter()
            .filter(|s| is_reason(s))
            .collect();
        let Some((want_code, want_reasons)) = code.get(&status) else {
            problems.push(format!("row {status}: extra, the server never answers it"));
            continue;
        };
        if &readme_code != want_code {
            problems.push(format!(
                "row {status}: code `{readme_code}`, the server sends `{want_code}`"
            ));
        }
        for missing in want_reasons.difference(&readme_reasons) {
            problems.push(format!("row {status}: reason `{missing}` is missing"));
        }
        for extra in readme_reasons.difference(want_reasons) {
            problems.push(format!(
                "row {status}: reason `{extra}` is not one the server sends with it"
            ));
        }
    }
    for (status, (c, reasons)) in &code {
        if !seen.contains(status) {
            problems.push(format!(
                "row {status} `{c}` is missing (reasons {reasons:?})"
            ));
        }
    }
    report("errors table", problems);
}

#[test]
fn the_configuration_table_matches_the_flags_variables_and_defaults_of_serve() {
    let cli = Cli::command();
    let serve = cli.find_subcommand("serve").expect("a serve subcommand");
    // --long → (variable, default shown by the README's first code span, if any)
    let mut want: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for arg in serve.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let default = if matches!(arg.get_action(), ArgAction::SetTrue) {
            Some("off".to_owned())
        } else {
            arg.get_default_values()
                .first()
                .map(|d| format!("`{}`", d.to_string_lossy()))
        };
        want.insert(format!("--{long}"), (env, default));
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for row in table("## Configuration", "Flag") {
        let flag = code_spans(&row[0])
            .first()
            .and_then(|f| f.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default();
        seen.insert(flag.clone());
        let Some((env, default)) = want.get(&flag) else {
            problems.push(format!(
                "row {flag}: extra, `keygate serve` has no such flag"
            ));
            continue;
        };
        let readme_env = code_spans(&row[1]).first().cloned();
        if &readme_env != env {
            problems.push(format!(
                "row {flag}: variable {readme_env:?}, the code reads {env:?}"
            ));
        }
        if let Some(default) = default
            && !row[2].starts_with(default.as_str())
        {
            problems.push(format!(
                "row {flag}: default {:?}, the code's is {default}",
                row[2]
            ));
        }
    }
    for flag in want.keys() {
        if !seen.contains(flag) {
            problems.push(format!("row {flag} is missing"));
        }
    }
    report("configuration table", problems);
}

#[test]
fn every_variable_the_readme_names_is_one_keygate_reads_and_the_reverse() {
    let read: BTreeSet<String> = keygate::cli::environment_variables().into_iter().collect();
    let named: BTreeSet<String> = README
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|w| w.starts_with("KEYGATE_"))
        .map(str::to_owned)
        .collect();
    let mut problems = Vec::new();
    for v in named.difference(&read) {
        problems.push(format!("{v}: named, but keygate does not read it"));
    }
    for v in read.difference(&named) {
        problems.push(format!("{v}: read by keygate, but not named"));
    }
    report("variables", problems);
}

fn spec() -> Value {
    serde_json::from_str(&keygate::api::spec_json()).expect("the spec is JSON")
}

fn flag_names() -> BTreeSet<String> {
    keygate::model::Flag::ALL
        .iter()
        .map(|f| f.name().to_owned())
        .collect()
}

#[test]
fn the_roles_table_names_exactly_the_permission_flags_of_the_model() {
    let flags = flag_names();
    let member = table("## Organizations and roles", "Role")
        .into_iter()
        .find(|r| r[0] == "`member`")
        .expect("a member row");
    let named: BTreeSet<String> = code_spans(&member[1])
        .into_iter()
        .filter(|s| s.starts_with("can"))
        .collect();
    let mut problems = Vec::new();
    for f in flags.difference(&named) {
        problems.push(format!("row member: flag `{f}` is missing"));
    }
    for f in named.difference(&flags) {
        problems.push(format!("row member: flag `{f}` is not one of keygate's"));
    }
    report("roles table", problems);
}

#[test]
fn the_spec_and_the_schema_name_exactly_the_permission_flags_of_the_model() {
    let flags = flag_names();
    let spec = spec();
    for schema in ["AssignPermissions", "PermissionsView"] {
        let in_spec: BTreeSet<String> = spec["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{schema} has properties"))
            .keys()
            .filter(|k| k.starts_with("can"))
            .cloned()
            .collect();
        assert_eq!(in_spec, flags, "the flags of {schema}");
    }
    let schema = include_str!("../schema.sql");
    let members = &schema[schema
        .find("CREATE TABLE members")
        .expect("a members table")..];
    let members = &members[..members.find(");").expect("its end")];
    let columns: BTreeSet<&str> = members
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.starts_with("can_"))
        .collect();
    let want: BTreeSet<&str> = keygate::model::Flag::ALL
        .iter()
        .map(|f| f.column())
        .collect();
    assert_eq!(columns, want, "the flag columns of members");
}

#[test]
fn the_spec_documents_the_length_limits_the_domain_checks() {
    use keygate::domain::{accounts, keys, resources};
    use keygate::model::{DESCRIPTION_MAX, Email, Password};
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let limit = |schema: &str, field: &str, bound: &str| -> Option<u64> {
        schemas[schema]["properties"][field][bound].as_u64()
    };
    let mut problems = Vec::new();
    let mut check = |schema: &str, field: &str, bound: &str, want: usize| {
        let got = limit(schema, field, bound);
        if got != Some(want as u64) {
            problems.push(format!(
                "{schema}.{field} {bound}: spec {got:?}, code {want}"
            ));
        }
    };
    for schema in ["SignUpBody", "CreateUserWithCredentials", "UpdateUser"] {
        check(schema, "password", "minLength", Password::MIN);
        check(schema, "password", "maxLength", Password::MAX);
    }
    check("SignInBody", "password", "maxLength", Password::MAX);
    for schema in [
        "SignUpBody",
        "SignInBody",
        "CreateUserWithCredentials",
        "InviteMember",
    ] {
        check(schema, "email", "maxLength", Email::MAX);
    }
    for schema in ["SignUpBody", "CreateUserWithCredentials", "UpdateUser"] {
        check(schema, "name", "maxLength", accounts::NAME_MAX);
    }
    for schema in ["CreateOrganization", "UpdateOrganization"] {
        check(schema, "name", "maxLength", accounts::NAME_MAX);
    }
    for schema in ["CreateApiKey", "UpdateApiKey"] {
        check(schema, "name", "maxLength", keys::NAME_MAX);
    }
    for kind in ["Project", "Environment", "Application"] {
        for schema in [format!("Create{kind}"), format!("Update{kind}")] {
            check(&schema, "name", "maxLength", resources::NAME_MAX);
            check(&schema, "description", "maxLength", DESCRIPTION_MAX);
        }
    }
    report("spec's limits", problems);
}

/// A row of the policy table as the README writes it.
fn policy_row(name: &str, need: &Need) -> Vec<String> {
    let mut role = match need.role {
        Needs::Anyone => "any user",
        Needs::Member => "member",
        Needs::Privileged => "owner or admin",
        Needs::Owner => "owner",
    }
    .to_owned();
    if need.org == Org::Named {
        role.push_str(" of the named organization");
    }
    let keys = match need.keys {
        Keys::Any => "any",
        Keys::Unscoped => "not limited to projects",
        Keys::Unlimited => "without any limit",
        Keys::None => "none",
    };
    let read_only = !need.writes && matches!(need.keys, Keys::Any | Keys::Unscoped);
    let list = match need.list {
        None => "-",
        Some(AccessList::Projects) => "`accessedProjects`",
        Some(AccessList::Environments) => "`accessedEnvironments`",
        Some(AccessList::Applications) => "`accessedServices`",
    };
    vec![
        format!("`{name}`"),
        role,
        need.flag
            .map_or("-".to_owned(), |f| format!("`{}`", f.name())),
        list.to_owned(),
        keys.to_owned(),
        if read_only { "yes" } else { "no" }.to_owned(),
    ]
}

#[test]
fn the_table_of_who_may_call_what_is_the_policy_table() {
    let rows = table("### Who may call what", "Operation");
    let wanted: Vec<Vec<String>> = TABLE.iter().map(|(n, need)| policy_row(n, need)).collect();
    let mut problems = Vec::new();
    for w in &wanted {
        match rows.iter().find(|r| r[0] == w[0]) {
            None => problems.push(format!("missing: | {} |", w.join(" | "))),
            Some(r) if r != w => problems.push(format!(
                "{}: the README says | {} |, the table | {} |",
                w[0],
                r[1..].join(" | "),
                w[1..].join(" | ")
            )),
            Some(_) => {}
        }
    }
    for r in &rows {
        if !wanted.iter().any(|w| w[0] == r[0]) {
            problems.push(format!("no such operation: {}", r[0]));
        }
    }
    report("table of who may call what", problems);
}
