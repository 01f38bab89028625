//! The policy table, checked through HTTP: for every operation of the spec, the row
//! `keygate::domain::policy` holds for it decides, for each kind of caller, whether the
//! policy refuses the call. A refused call must answer 401 `permission_denied` and change
//! nothing; a call the row allows to the owner's credentials (a session, and keys with
//! each kind of limit) must not be refused by it.
//!
//! The expectation of each cell is computed here from the row's fields, the way the
//! reference states the rules (owners and admins hold every flag; a read-only key writes
//! nothing; a key limited to projects manages no organization; a key with any limit
//! does not act on the account; some things only a session does; a member reaches only
//! the resources in its lists), so a row that says
//! one thing while the code does another fails here. The requests are those of
//! `isolation.rs`, aimed at our organization.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use keygate::domain::policy::{self, Keys, Need, Needs};
use keygate::model::Flag;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::helpers::*;
use crate::isolation::{Op, World, operations};

/// Who calls, all of our organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    OwnerSession,
    OwnerKey,
    OwnerReadOnlyKey,
    /// Limited to our project.
    OwnerScopedKey,
    /// Expires: limited, but not scoped.
    OwnerExpiringKey,
    AdminSession,
    /// Every flag, and our resources in its lists.
    FlaggedMember,
    /// Every flag, and empty lists: refused whatever a row's list must hold.
    ListlessMember,
    /// No flag.
    PlainMember,
}

const CALLERS: [Caller; 9] = [
    Caller::OwnerSession,
    Caller::OwnerKey,
    Caller::OwnerReadOnlyKey,
    Caller::OwnerScopedKey,
    Caller::OwnerExpiringKey,
    Caller::AdminSession,
    Caller::FlaggedMember,
    Caller::ListlessMember,
    Caller::PlainMember,
];

/// A key's limits, as the policy tells them apart.
struct KeyKind {
    read_only: bool,
    scoped: bool,
    limited: bool,
}

impl Caller {
    fn key(self) -> Option<KeyKind> {
        let kind = |read_only, scoped, limited| {
            Some(KeyKind {
                read_only,
                scoped,
                limited,
            })
        };
        match self {
            Caller::OwnerKey => kind(false, false, false),
            Caller::OwnerReadOnlyKey => kind(true, false, true),
            Caller::OwnerScopedKey => kind(false, true, true),
            Caller::OwnerExpiringKey => kind(false, false, true),
            _ => None,
        }
    }

    /// The caller's role, and whether it holds every flag.
    fn role(self) -> (&'static str, bool) {
        match self {
            Caller::AdminSession => ("admin", true),
            Caller::FlaggedMember | Caller::ListlessMember => ("member", true),
            Caller::PlainMember => ("member", false),
            _ => ("owner", true),
        }
    }

    /// Whether the call passes every check beyond the policy's for each request of
    /// `isolation.rs` (whose targets are the owner's and our organization's), so that
    /// what the row allows must come through.
    fn owns_the_targets(self) -> bool {
        self.role().0 == "owner"
    }

    fn who(self, w: &World) -> As {
        match self {
            Caller::OwnerSession => w.owner.clone(),
            Caller::OwnerKey => w.owner_keys.plain.clone(),
            Caller::OwnerReadOnlyKey => w.owner_keys.read_only.clone(),
            Caller::OwnerScopedKey => w.owner_keys.scoped.clone(),
            Caller::OwnerExpiringKey => w.owner_keys.expiring.clone(),
            Caller::AdminSession => w.admin.who.clone(),
            Caller::FlaggedMember => w.with.who.clone(),
            Caller::ListlessMember => w.flags_only.who.clone(),
            Caller::PlainMember => w.without.who.clone(),
        }
    }
}

/// Whether the rules refuse `c` the operation of `need`: its key first, then its role,
/// then (for a member) the access list that must hold the resource the request names,
/// which for every request here is one of ours.
fn refuses(need: &Need, c: Caller) -> bool {
    if let Some(k) = c.key() {
        let refused = (k.read_only && need.writes)
            || match need.keys {
                Keys::Any => false,
                Keys::Unscoped => k.scoped,
                Keys::Unlimited => k.limited,
                Keys::None => true,
            };
        if refused {
            return true;
        }
    }
    let (role, flags) = c.role();
    let by_role = match need.role {
        Needs::Anyone | Needs::Member => false,
        // A member holding the row's flag stands in for owner and admin.
        Needs::Privileged => role == "member" && !(flags && need.flag.is_some()),
        Needs::Owner => role != "owner",
    };
    by_role || (c == Caller::ListlessMember && need.list.is_some())
}

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exp {
    Refused,
    /// Not refused by the policy (the operation may still refuse for its own reasons).
    Through,
    /// The policy lets it through, but the request's target is not the caller's: not
    /// checked here (`isolation.rs` and `roles.rs` check those).
    Unchecked,
}

fn expect(need: &Need, c: Caller) -> Exp {
    if refuses(need, c) {
        Exp::Refused
    } else if c.owns_the_targets() {
        Exp::Through
    } else {
        Exp::Unchecked
    }
}

fn op_id(path: &str) -> &str {
    path.trim_start_matches("/api/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_answers_each_kind_of_caller_as_its_policy_row_says() {
    let ops = operations();

    // Every secured operation of the spec has a row, and every row an operation.
    // The operations the middleware authenticates, as the generated document says.
    let spec: Value = serde_json::from_str(&keygate::api::openapi::raw()).unwrap();
    let mut secured = BTreeSet::new();
    for (path, methods) in spec["paths"].as_object().unwrap() {
        for op in methods.as_object().unwrap().values() {
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                assert_eq!(op["operationId"], op_id(path), "{path}");
                secured.insert(op_id(path).to_owned());
            }
        }
    }
    let rows: BTreeSet<String> = policy::TABLE.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        secured, rows,
        "the secured operations of the spec and the rows of the policy table differ"
    );
    for (name, need) in policy::TABLE {
        let path = format!("/api/{name}");
        let method = spec["paths"][&path]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap();
        assert_eq!(
            need.writes,
            method == "post",
            "{name}: writes, by its method"
        );
        if let Some(f) = need.flag {
            assert!(Flag::ALL.contains(&f));
        }
    }

    // One request per operation: the first of `isolation.rs`'s rows for it.
    let mut seen = BTreeSet::new();
    let ops: Vec<Op> = ops.into_iter().filter(|op| seen.insert(op.path)).collect();

    let slots = Arc::new(Semaphore::new(4));
    let mut fresh = JoinSet::new();
    let mut shared_cells = Vec::new();
    let mut counts = [0usize; 3];
    for op in &ops {
        let need = *policy::need(op_id(op.path)).expect("a row");
        for c in CALLERS {
            let exp = expect(&need, c);
            counts[exp as usize] += 1;
            match exp {
                Exp::Unchecked => {}
                // Refusals change nothing, and reads nothing either: they share a world.
                Exp::Refused => shared_cells.push((*op, c, exp)),
                Exp::Through if !need.writes => shared_cells.push((*op, c, exp)),
                Exp::Through => {
                    let (op, slots) = (*op, Arc::clone(&slots));
                    fresh.spawn(async move {
                        let _slot = slots.acquire_owned().await.unwrap();
                        let w = World::build().await;
                        run(&w, &op, c, exp).await
                    });
                }
            }
        }
    }

    let mut wrong = Vec::new();
    let w = World::build().await;
    for (op, c, exp) in &shared_cells {
        wrong.extend(run(&w, op, *c, *exp).await);
    }
    while let Some(done) = fresh.join_next().await {
        wrong.extend(done.unwrap());
    }
    wrong.sort();

    let mut report = String::new();
    for line in &wrong {
        writeln!(report, "  {line}").unwrap();
    }
    println!(
        "{} refused and {} allowed cells checked, {} left to the isolation and role tests",
        counts[0], counts[1], counts[2]
    );
    assert!(
        counts[0] > 50 && counts[1] > 50,
        "the table allows or refuses too little to be a test: {counts:?}"
    );
    assert!(
        wrong.is_empty(),
        "\n{} cells answered against the policy table:\n{report}",
        wrong.len()
    );
}

/// One cell: what is wrong with the answer, if anything.
async fn run(w: &World, op: &Op, c: Caller, exp: Exp) -> Option<String> {
    let before = dump(&w.app);
    let r = w.send_as(op, &c.who(w)).await;
    let refused = (r.status, r.reason()) == (401, "permission_denied");
    let cell = format!("{} as {c:?}", op_id(op.path));
    match exp {
        Exp::Refused if !refused => Some(format!(
            "{cell}: the row refuses it, the answer was {} {}",
            r.status,
            r.reason()
        )),
        Exp::Refused if dump(&w.app) != before => {
            Some(format!("{cell}: refused, yet the database changed"))
        }
        Exp::Through if refused => {
            Some(format!("{cell}: the row allows it, the answer refused it"))
        }
        _ => None,
    }
}
