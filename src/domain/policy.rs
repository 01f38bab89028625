//! Who may do what: one table with a row per operation, and one decision.
//!
//! Each operation of the API (and each write the server makes on its own) has a marker
//! type in `op` and a row in `TABLE`: the role it needs, the member flag that stands in
//! for owner or admin, which API keys may call it, the access list that must hold the
//! resource it names, and whether it writes. `authorize` decides from the row alone and
//! answers an `Authorized<Op>` proof, which `State::write` takes: a write that no
//! decision allowed does not compile.
//!
//! What depends on the rows a request names is decided where those rows are read: the
//! key's own organization and the member's access lists (by the row's list, through
//! `Actor::sees_*`), the target of a role change, the owner of a key.

use std::marker::PhantomData;

use super::access::Actor;
use crate::error::{Error, Reason, Result};
use crate::model::{Flag, Membership, Role};
use crate::store::orgs::AccessList;

/// The least role an operation needs, in the organization the row's `Org` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any signed-in user, member of an organization or not.
    Anyone,
    /// A member, of any role.
    Member,
    /// Owner or admin; a member holding the row's flag stands in for them.
    Privileged,
    Owner,
}

/// The API keys that may call an operation. Sessions always may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Any,
    /// Not a key limited to some projects: such a key is for automation inside them. It
    /// could widen itself by managing the organization (members, invitations, the
    /// organization itself), and a project it made would be outside its reach.
    Unscoped,
    /// Only a key with no limit at all (scope, expiry, quota, rate limit): what acts on
    /// the account itself could otherwise mint a key without the limit, or take the
    /// account over.
    Unlimited,
    /// None: what only a person at a browser does.
    None,
}

/// Whose membership the role applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Org {
    /// The organization the request acts in (the key's, the session's active one).
    Acting,
    /// The organization the request names, whose membership the operation loads: the
    /// decision finishes with `Pending::in_org`.
    Named,
}

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub role: Needs,
    /// The member flag that lets a member do what `Privileged` otherwise reserves to
    /// owners and admins.
    pub flag: Option<Flag>,
    pub keys: Keys,
    pub org: Org,
    /// The access list that must hold the resource the request names, for a member (with
    /// the lists above it: an environment's project, an application's environment and
    /// project); owners and admins bypass the lists.
    pub list: Option<AccessList>,
    /// Whether it changes anything: read-only keys are refused it.
    pub writes: bool,
    /// Whether it concerns the account rather than the organization: a session that must
    /// still turn two-factor on for its organization may call it.
    pub account: bool,
}

impl Need {
    const fn read(role: Needs) -> Need {
        Need {
            role,
            flag: None,
            keys: Keys::Any,
            org: Org::Acting,
            list: None,
            writes: false,
            account: false,
        }
    }

    const fn write(role: Needs) -> Need {
        Need {
            writes: true,
            ..Need::read(role)
        }
    }

    const fn keys(self, keys: Keys) -> Need {
        Need { keys, ..self }
    }

    const fn flag(self, flag: Flag) -> Need {
        Need {
            flag: Some(flag),
            ..self
        }
    }

    const fn list(self, list: AccessList) -> Need {
        Need {
            list: Some(list),
            ..self
        }
    }

    const fn account(self) -> Need {
        Need {
            account: true,
            ..self
        }
    }

    const fn named(self) -> Need {
        Need {
            org: Org::Named,
            ..self
        }
    }
}

/// An operation, as the policy knows it.
pub trait Op {
    /// Its operation id in the spec, or a name of its own for a write without a route.
    const NAME: &'static str;
    const NEED: Need;
}

/// A write the server makes without a caller to decide on (sign-up and sign-in, usage
/// and quota bookkeeping, session upkeep, the shell).
pub trait Unchecked: Op {}

/// The proof that the policy allowed `O`: `State::write` takes one. A read has nothing
/// to show it to, and drops it.
pub struct Authorized<O>(PhantomData<O>);

/// Half a decision for an operation on a named organization: the caller passed every
/// check but the role, which `in_org` makes against the membership loaded for it.
#[must_use]
pub struct Pending<O>(PhantomData<O>);

macro_rules! table {
    (
        $( $(#[$doc:meta])* $ty:ident $name:literal => $need:expr; )*
        ---
        $( $(#[$udoc:meta])* $uty:ident $uname:literal; )*
    ) => {
        /// The operations' marker types.
        pub mod op {
            use super::*;
            $(
                $(#[$doc])*
                pub struct $ty;
                impl Op for $ty {
                    const NAME: &'static str = $name;
                    const NEED: Need = $need;
                }
            )*
            $(
                $(#[$udoc])*
                pub struct $uty;
                impl Op for $uty {
                    const NAME: &'static str = $uname;
                    const NEED: Need = Need::write(Needs::Anyone);
                }
                impl Unchecked for $uty {}
            )*
        }

        /// Every operation of the API with what it needs, in the spec's order.
        pub const TABLE: &[(&str, Need)] = &[$( ($name, $need), )*];

        /// The writes made without a caller's decision.
        pub const UNCHECKED: &[&str] = &[$( $uname, )*];
    };
}

use AccessList::*;
use Flag::*;
use Needs::*;

table! {
    OrganizationCreate "organization.create" => Need::write(Anyone).keys(Keys::None).account();
    OrganizationAll "organization.all" => Need::read(Anyone).account();
    OrganizationOne "organization.one" => Need::read(Member).named();
    OrganizationUpdate "organization.update" => Need::write(Privileged).keys(Keys::Unscoped).named();
    OrganizationDelete "organization.delete" => Need::write(Owner).keys(Keys::Unscoped).named();
    OrganizationSetActive "organization.setActive" => Need::write(Member).keys(Keys::None).named().account();
    OrganizationActive "organization.active" => Need::read(Member);
    OrganizationInviteMember "organization.inviteMember" => Need::write(Privileged).keys(Keys::Unscoped);
    OrganizationAllInvitations "organization.allInvitations" => Need::read(Privileged).keys(Keys::Unscoped);
    OrganizationRemoveInvitation "organization.removeInvitation" => Need::write(Privileged).keys(Keys::Unscoped);
    OrganizationAcceptInvitation "organization.acceptInvitation" => Need::write(Anyone).keys(Keys::None).account();
    OrganizationUpdateMemberRole "organization.updateMemberRole" => Need::write(Privileged).keys(Keys::Unscoped);
    UserGet "user.get" => Need::read(Anyone).account();
    UserListApiKeys "user.listApiKeys" => Need::read(Anyone);
    UserCreateApiKey "user.createApiKey" => Need::write(Privileged).flag(AccessToApi).keys(Keys::Unlimited).named();
    UserDeleteApiKey "user.deleteApiKey" => Need::write(Anyone).keys(Keys::Unlimited);
    UserUpdateApiKey "user.updateApiKey" => Need::write(Anyone).keys(Keys::Unlimited);
    UserRotateApiKey "user.rotateApiKey" => Need::write(Anyone).keys(Keys::Unlimited);
    UserUpdate "user.update" => Need::write(Anyone).keys(Keys::Unlimited).account();
    UserListSessions "user.listSessions" => Need::read(Anyone).keys(Keys::Unlimited).account();
    UserRevokeSession "user.revokeSession" => Need::write(Anyone).keys(Keys::Unlimited).account();
    UserAll "user.all" => Need::read(Privileged).keys(Keys::Unscoped);
    UserOne "user.one" => Need::read(Privileged).keys(Keys::Unscoped);
    UserRemove "user.remove" => Need::write(Privileged).keys(Keys::Unscoped);
    UserAssignPermissions "user.assignPermissions" => Need::write(Privileged).keys(Keys::Unscoped);
    UserGetPermissions "user.getPermissions" => Need::read(Member);
    UserCreateUserWithCredentials "user.createUserWithCredentials" => Need::write(Privileged).keys(Keys::Unscoped);
    /// No key: a reset link takes a person's account over, so only a person at a browser,
    /// signed in, makes one. A key (leaked, or held by automation) could otherwise turn
    /// into every account of its organization that its user may manage.
    UserCreatePasswordReset "user.createPasswordReset" => Need::write(Privileged).keys(Keys::None);
    /// A key's requests per hour: its user's own keys, or any key of the organization
    /// for its owner and admins and their keys not limited to projects (decided where
    /// the key is read).
    UserApiKeyUsage "user.apiKeyUsage" => Need::read(Anyone);
    ProjectCreate "project.create" => Need::write(Privileged).flag(CreateProjects).keys(Keys::Unscoped);
    ProjectOne "project.one" => Need::read(Member).list(Projects);
    ProjectAll "project.all" => Need::read(Member);
    ProjectUpdate "project.update" => Need::write(Privileged).flag(CreateProjects).list(Projects);
    ProjectRemove "project.remove" => Need::write(Privileged).flag(DeleteProjects).list(Projects);
    ProjectSearch "project.search" => Need::read(Member);
    EnvironmentCreate "environment.create" => Need::write(Privileged).flag(CreateEnvironments).list(Projects);
    EnvironmentOne "environment.one" => Need::read(Member).list(Environments);
    EnvironmentByProjectId "environment.byProjectId" => Need::read(Member).list(Projects);
    EnvironmentUpdate "environment.update" => Need::write(Privileged).flag(CreateEnvironments).list(Environments);
    EnvironmentRemove "environment.remove" => Need::write(Privileged).flag(DeleteEnvironments).list(Environments);
    ApplicationCreate "application.create" => Need::write(Privileged).flag(CreateServices).list(Environments);
    ApplicationOne "application.one" => Need::read(Member).list(Applications);
    ApplicationUpdate "application.update" => Need::write(Privileged).flag(CreateServices).list(Applications);
    ApplicationDelete "application.delete" => Need::write(Privileged).flag(DeleteServices).list(Applications);
    ApplicationSearch "application.search" => Need::read(Member);
    DomainCreate "domain.create" => Need::write(Privileged).flag(CreateServices).list(Applications);
    DomainOne "domain.one" => Need::read(Member).list(Applications);
    DomainByApplicationId "domain.byApplicationId" => Need::read(Member).list(Applications);
    DomainUpdate "domain.update" => Need::write(Privileged).flag(CreateServices).list(Applications);
    DomainDelete "domain.delete" => Need::write(Privileged).flag(DeleteServices).list(Applications);
    ApiKeyVerify "apiKey.verify" => Need::write(Privileged);
    /// The organization's audit log: its owner and admins, or their unscoped keys (an
    /// export to a log store).
    AuditAll "audit.all" => Need::read(Privileged).keys(Keys::Unscoped);
    /// The events that concern the caller's own account.
    AuditAccount "audit.account" => Need::read(Anyone).keys(Keys::Unlimited).account();
    ---
    /// Sign-up: a new account, with its organization and first session.
    SignUp "auth.signUp";
    /// Sign-in: a new session.
    SignIn "auth.signIn";
    /// Sign-out: the session ends.
    SignOut "auth.signOut";
    /// Two-factor set up, confirmed, changed or turned off by a signed-in user who gave
    /// the password again; or the code step of a sign-in.
    TwoFactor "auth.twoFactor";
    /// A password set with a reset link: the link is used up, the user signed out.
    ResetPassword "auth.resetPassword";
    /// A session's expiry moved on, or expired sessions removed.
    SessionUpkeep "session.upkeep";
    /// Key usage and quota leases written from memory.
    KeyUsage "key.usage";
    /// A command run from the shell by whoever holds the database file.
    Shell "shell";
    /// Refusals counted in memory, written to the audit log.
    AuditFlush "audit.flush";
    /// Audit events and usage series older than their retention, deleted.
    Retention "retention";
}

/// The row of the operation `name`, if the API has one.
pub fn need(name: &str) -> Option<&'static Need> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, need)| need)
}

/// Whether the operation `name` writes, by its row: read-only keys are refused it. An
/// operation without a row counts as one that writes.
pub fn writes(name: &str) -> bool {
    need(name).is_none_or(|need| need.writes)
}

/// Decides whether `actor` may do `O`, from `O`'s row: first which keys may, then (for
/// the acting organization) the membership, the role and the flag. An operation on a
/// named organization continues with `Pending::in_org`.
pub fn authorize<O: Op>(actor: &Actor) -> Result<Authorized<O>> {
    let need = O::NEED;
    debug_assert!(
        need.org == Org::Acting,
        "{} names its organization",
        O::NAME
    );
    keys_may(actor, &need)?;
    two_factor_may(actor, &need)?;
    if need.role != Needs::Anyone {
        holds(actor.member()?, &need)?;
    }
    Ok(Authorized(PhantomData))
}

/// The first half of the decision on an operation on a named organization: which keys
/// may. The operation then loads the caller's membership there and calls `in_org`.
pub fn authorize_named<O: Op>(actor: &Actor) -> Result<Pending<O>> {
    let need = O::NEED;
    debug_assert!(
        need.org == Org::Named,
        "{} acts in its organization",
        O::NAME
    );
    keys_may(actor, &need)?;
    two_factor_may(actor, &need)?;
    Ok(Pending(PhantomData))
}

impl<O: Op> Pending<O> {
    /// The role and flag, against the caller's membership in the named organization.
    pub fn in_org(self, m: &Membership) -> Result<Authorized<O>> {
        holds(m, &O::NEED)?;
        Ok(Authorized(PhantomData))
    }
}

/// The proof for a write without a caller.
pub fn unchecked<O: Unchecked>() -> Authorized<O> {
    Authorized(PhantomData)
}

fn denied() -> Error {
    Error::Denied(Reason::PermissionDenied)
}

fn keys_may(actor: &Actor, need: &Need) -> Result<()> {
    let Some(k) = actor.key() else {
        return Ok(());
    };
    let refused = match need.keys {
        Keys::Any => false,
        Keys::Unscoped => k.scope.project_ids.is_some(),
        Keys::Unlimited => {
            !k.scope.is_unrestricted()
                || k.expires_at.is_some()
                || k.remaining.is_some()
                || k.rate_limit.is_some()
        }
        Keys::None => true,
    };
    if refused { Err(denied()) } else { Ok(()) }
}

/// A session whose organization requires two-factor, which its user has not turned on,
/// acts only on the account: 401 `two_factor_required` for the rest. Keys are unaffected:
/// two-factor guards people, not automation.
fn two_factor_may(actor: &Actor, need: &Need) -> Result<()> {
    if !need.account && actor.two_factor_blocked() {
        return Err(Error::Denied(Reason::TwoFactorRequired));
    }
    Ok(())
}

fn holds(m: &Membership, need: &Need) -> Result<()> {
    let flagged = || need.flag.is_some_and(|f| f.is_in(&m.flags));
    let enough = match need.role {
        Needs::Anyone | Needs::Member => true,
        Needs::Privileged => m.role.is_privileged() || flagged(),
        Needs::Owner => m.role == Role::Owner,
    };
    if enough { Ok(()) } else { Err(denied()) }
}

/// Whether a user of role `role` may hold and use API keys in an organization: members
/// need `canAccessToAPI` (the flag of `user.createApiKey`'s row).
pub fn may_use_keys(m: &Membership) -> Result<()> {
    holds(m, &op::UserCreateApiKey::NEED)
}

/// The caller's session, for what only a session does: the operations whose row admits
/// no key, and a password change within `user.update`, which keys may otherwise call.
pub fn session_only(actor: &Actor) -> Result<&crate::model::SessionId> {
    actor.session_id().ok_or_else(denied)
}

/// A key acts only inside its own organization: `wrong_organization` for another one.
pub fn within_key_org(actor: &Actor, org: &crate::model::OrgId) -> Result<()> {
    if let Some(k) = actor.key()
        && k.organization_id != *org
    {
        return Err(Error::Denied(Reason::WrongOrganization));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_has_one_row_and_a_flag_stands_in_for_owner_or_admin_only() {
        let mut names: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
        names.extend(UNCHECKED);
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an operation has two rows");
        for (name, need) in TABLE {
            if need.flag.is_some() {
                assert_eq!(
                    need.role,
                    Needs::Privileged,
                    "{name}: a flag stands in for a role"
                );
            }
        }
        assert!(need("project.create").is_some_and(|n| n.writes));
        assert!(need("project.all").is_some_and(|n| !n.writes));
        assert!(need("no.such").is_none());
    }
}
