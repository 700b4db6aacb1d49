//! Provisioning for resellers: organizations with their domain certificate, Direct
//! addresses, authorized users, passwords; and what they look like afterwards.
//!
//! Atomicity: `provision` is all-or-nothing (an organization is created whole or not at all).
//! The "add" and "update" operations work per item: every valid item is applied, each bad
//! item is reported with its own status and reason, and a refused payment applies nothing.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Months, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Actor;
use super::identity_import::SSN_HASH_PURPOSE;
use super::pki::{self as pki_service, CertificateRequest, PkiContext};
use crate::auth::secrets;
use crate::config::OffersConfig;
use crate::domain::Invalid;
use crate::domain::identity::{IdpId, SsnLast4, UsState};
use crate::domain::offer::{Cents, Offer, prorate};
use crate::domain::pki::{CertificateCategory, DirectDomain, organization_status as org_status};
use crate::domain::provisioning::{
    Refusal, Settings, UserType, check_password, given_password, parse_username,
};
use crate::error::{AppError, AppResult};
use crate::store::{self, provisioning as rows};

/// Everything a provisioning call needs besides its arguments.
pub struct Ctx<'a> {
    pub db: &'a PgPool,
    pub pki: &'a PkiContext,
    pub offers: &'a OffersConfig,
    pub identity_key: &'a [u8],
    pub actor: Actor,
    pub reseller: Uuid,
    pub now: DateTime<Utc>,
}

// ---- inputs --------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct OrganizationInput {
    pub certified_id: Option<String>,
    pub name: Option<String>,
    pub taxid: Option<String>,
    pub state: Option<String>,
}

impl OrganizationInput {
    fn is_empty(&self) -> bool {
        self.certified_id.is_none()
            && self.name.is_none()
            && self.taxid.is_none()
            && self.state.is_none()
    }
}

#[derive(Debug, Clone, Default)]
pub struct PersonInput {
    pub idp_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub ssn4: Option<String>,
    pub dob: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AddressInput {
    pub person: PersonInput,
    pub username: Option<String>,
    pub password: Option<String>,
    pub user_type: Option<String>,
    pub settings: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct DirectForm {
    pub organization: Option<OrganizationInput>,
    pub department_name: Option<String>,
    pub administrators: Vec<PersonInput>,
    pub authorized_users: Vec<PersonInput>,
    pub addresses: Vec<AddressInput>,
    pub default_settings: Vec<(String, String)>,
    pub organization_type: Option<String>,
}

// ---- outputs -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    Provisioned,
    ProvisionFailed,
    Updated,
    UpdateFailed,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioned => "Provisioned",
            Self::ProvisionFailed => "ProvisionFailed",
            Self::Updated => "Updated",
            Self::UpdateFailed => "UpdateFailed",
        }
    }
}

/// The outcome of one address (keyed by username) or one user (keyed by idp_id).
#[derive(Debug, Clone)]
pub struct ItemResult {
    pub key: String,
    pub status: ItemStatus,
    pub message: String,
}

impl ItemResult {
    pub fn success(&self) -> bool {
        matches!(self.status, ItemStatus::Provisioned | ItemStatus::Updated)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Product {
    pub name: String,
    pub description: String,
    pub quantity: i64,
    pub offer_price: Cents,
    pub sale_price: Cents,
    pub amount: Cents,
    pub start_date: NaiveDate,
    pub expire_date: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub order_id: i64,
    pub amount: Cents,
    pub order_time: DateTime<Utc>,
    pub products: Vec<Product>,
    pub detail: String,
}

/// What a form call did. `error` is set when it did not fully succeed; the items say which
/// parts did.
#[derive(Debug, Default)]
pub struct SubmitResult {
    pub error: Option<AppError>,
    pub payment: Option<Payment>,
    pub addresses: Vec<ItemResult>,
    pub users: Vec<ItemResult>,
}

// ---- shared checks -------------------------------------------------------------------------

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_domain(s: Option<&str>) -> AppResult<DirectDomain> {
    let s = s.ok_or_else(|| Invalid::new("DirectDomain", "is required"))?;
    DirectDomain::parse(s).map_err(|e| Invalid::new("DirectDomain", e.message).into())
}

fn settings(pairs: &[(String, String)]) -> Result<Settings, Invalid> {
    Settings::parse(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

/// What provisioning an organization with `offer` charges.
pub fn offer_price(offers: &OffersConfig, offer: Offer) -> AppResult<Cents> {
    let price = match offers.prices.get(&offer.to_string()) {
        Some(p) => *p,
        None => address_price_dollars(offers, offer.nlp) * f64::from(offer.seats),
    };
    Ok(Cents::from_dollars(price)?)
}

fn address_price_dollars(offers: &OffersConfig, nlp: bool) -> f64 {
    if nlp {
        offers.cdonlp_address_price
    } else {
        offers.cdo_address_price
    }
}

/// Finds the verified individual an input names: by idp_id, or by name, SSN last 4 and
/// date of birth.
async fn resolve_person(
    conn: &mut PgConnection,
    key: &[u8],
    p: &PersonInput,
) -> AppResult<rows::IndividualRow> {
    if let Some(id) = text(&p.idp_id) {
        let id = IdpId::parse(id)?;
        let person = rows::individual(conn, id.get()).await?.ok_or_else(|| {
            AppError::from(Refusal::IndividualNotVerified(format!(
                "(idp_id {} is not verified)",
                id.get()
            )))
        })?;
        return not_restricted(conn, person).await;
    }
    let (Some(first), Some(last), Some(ssn4), Some(dob)) = (
        text(&p.first_name),
        text(&p.last_name),
        text(&p.ssn4),
        text(&p.dob),
    ) else {
        return Err(Refusal::IndividualNotVerified(
            "(give idp_id, or firstName, lastName, ssn4 and dob)".into(),
        )
        .into());
    };
    let not_found = || Refusal::IndividualNotVerified(format!("({first} {last} is not verified)"));
    let Ok(ssn4) = SsnLast4::parse(ssn4) else {
        return Err(not_found().into());
    };
    // xs:date may carry a zone ("1980-01-31Z"); the date is the first ten characters.
    let Some(dob) = dob
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    else {
        return Err(Invalid::new("dob", "must be a date YYYY-MM-DD").into());
    };
    let hash = secrets::keyed_hash(key, SSN_HASH_PURPOSE, ssn4.digits());
    let person = rows::individual_by_identity(conn, first, last, dob, &hash)
        .await?
        .ok_or_else(|| AppError::from(not_found()))?;
    not_restricted(conn, person).await
}

/// Refuses an individual whose credentialing standing is restricted: no new address or role.
async fn not_restricted(
    conn: &mut PgConnection,
    person: rows::IndividualRow,
) -> AppResult<rows::IndividualRow> {
    match crate::store::credentialing::restriction(conn, person.idp_id).await? {
        Some(reason) => Err(Refusal::IndividualNotVerified(format!(
            "(idp_id {} is restricted by credentialing: {reason})",
            person.idp_id
        ))
        .into()),
        None => Ok(person),
    }
}

/// An address item that passed every check, ready to insert.
struct ValidAddress {
    index: usize,
    username: String,
    /// `None`: the item gave no password, and the address gets none (it cannot log in until
    /// UpdateDirectAddressPassword sets one).
    password: Option<String>,
    person: rows::IndividualRow,
    settings: Settings,
}

impl ValidAddress {
    fn provisioned(&self, domain: &DirectDomain) -> String {
        match self.password {
            Some(_) => format!("{}@{domain} provisioned", self.username),
            None => format!(
                "{}@{domain} provisioned without a password (empty password ignored)",
                self.username
            ),
        }
    }
}

/// A username that is not a mailbox name is the seed's "invalid user" (002); a missing one is
/// a missing argument (010), as for every other required field.
fn new_username(a: &AddressInput) -> AppResult<String> {
    let given = text(&a.username).ok_or_else(|| Invalid::new("username", "is required"))?;
    parse_username(given)
        .map_err(|e| Refusal::InvalidUser(format!("({given}) {}", e.message)).into())
}

/// Checks one new address: identity, username, password, user type and settings.
async fn check_new_address(
    conn: &mut PgConnection,
    key: &[u8],
    domain: &DirectDomain,
    a: &AddressInput,
    seen: &mut HashSet<String>,
) -> AppResult<(String, Option<String>, rows::IndividualRow, Settings)> {
    let username = new_username(a)?;
    if let Err(u) = UserType::parse(text(&a.user_type)) {
        return Err(Refusal::UnsupportedUserType(u.0).into());
    }
    let password = given_password(a.password.as_deref()).map(str::to_owned);
    if let Some(p) = &password {
        check_password(p)?;
    }
    let settings = settings(&a.settings)?;
    if !seen.insert(username.clone()) {
        return Err(Refusal::Account(format!("{username} appears twice in this request")).into());
    }
    if rows::address_id(conn, domain.as_str(), &username)
        .await?
        .is_some()
    {
        return Err(Refusal::Account(format!("{username}@{domain} already exists")).into());
    }
    let person = resolve_person(conn, key, &a.person).await?;
    Ok((username, password, person, settings))
}

/// Splits an item's error: a rule the item broke is reported on the item; a failure of ours
/// (database, internal) fails the whole call, so no internals reach an item message.
fn item_error(e: AppError) -> AppResult<AppError> {
    match e {
        AppError::Internal(_)
        | AppError::Unavailable
        | AppError::Timeout(_)
        | AppError::Overloaded { .. } => Err(e),
        other => Ok(other),
    }
}

/// Checks every new address of a request: the valid ones, and each bad one's error by index.
async fn check_new_addresses(
    conn: &mut PgConnection,
    key: &[u8],
    domain: &DirectDomain,
    addresses: &[AddressInput],
) -> AppResult<(Vec<ValidAddress>, BTreeMap<usize, AppError>)> {
    let mut valid = Vec::new();
    let mut errors = BTreeMap::new();
    let mut seen = HashSet::new();
    for (index, a) in addresses.iter().enumerate() {
        match check_new_address(conn, key, domain, a, &mut seen).await {
            Ok((username, password, person, settings)) => valid.push(ValidAddress {
                index,
                username,
                password,
                person,
                settings,
            }),
            Err(e) => {
                errors.insert(index, item_error(e)?);
            }
        }
    }
    Ok((valid, errors))
}

fn item_key(a: &AddressInput, index: usize) -> String {
    text(&a.username)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("directAddresses[{index}]"))
}

/// Each address's password hash, `None` for an address without a password.
async fn hash_passwords(valid: &[ValidAddress]) -> AppResult<Vec<Option<String>>> {
    let passwords: Vec<String> = valid.iter().filter_map(|v| v.password.clone()).collect();
    // One at a time, through the bounded argon2 slots: logins keep their turn meanwhile.
    let mut hashes = crate::auth::argon::hash_all(passwords).await?.into_iter();
    Ok(valid
        .iter()
        .map(|v| v.password.as_ref().and_then(|_| hashes.next()))
        .collect())
}

async fn insert_addresses(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    org_id: i64,
    domain: &DirectDomain,
    valid: &[ValidAddress],
    hashes: &[Option<String>],
) -> AppResult<Vec<bool>> {
    let mut inserted = Vec::with_capacity(valid.len());
    for (v, hash) in valid.iter().zip(hashes) {
        let new = rows::NewAddress {
            organization_id: org_id,
            username: &v.username,
            domain: domain.as_str(),
            user_type: UserType::Smtp.as_str(),
            person: &v.person,
            password_hash: hash.as_deref(),
            settings: v.settings.to_json(),
        };
        let id = rows::insert_address(tx, &new).await?;
        if let Some(id) = id {
            let id = id.to_string();
            store::audit::record(
                tx,
                ctx.actor.audit("address.provision", "direct_address", &id),
            )
            .await?;
        }
        inserted.push(id.is_some());
    }
    Ok(inserted)
}

/// Records the order and takes the money; a refusal aborts the caller's transaction.
async fn pay(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    org_id: i64,
    operation: &str,
    products: Vec<Product>,
    detail: String,
) -> AppResult<Payment> {
    let amount = Cents(products.iter().map(|p| p.amount.0).sum());
    let order = store::accounts::NewOrder {
        reseller: ctx.reseller,
        organization_id: org_id,
        operation,
        amount_cents: amount.0,
        products: serde_json::to_value(&products).map_err(anyhow::Error::from)?,
        detail: &detail,
        at: ctx.now,
    };
    let order_id = store::accounts::insert_order(tx, &order).await?;
    super::accounts::charge(tx, ctx.reseller, amount, order_id, &ctx.actor, ctx.now).await??;
    Ok(Payment {
        order_id,
        amount,
        order_time: ctx.now,
        products,
        detail,
    })
}

fn failed_items(
    form: &DirectForm,
    errors: &BTreeMap<usize, AppError>,
    why_not: &str,
) -> Vec<ItemResult> {
    form.addresses
        .iter()
        .enumerate()
        .map(|(i, a)| ItemResult {
            key: item_key(a, i),
            status: ItemStatus::ProvisionFailed,
            message: errors
                .get(&i)
                .map_or_else(|| why_not.to_owned(), ToString::to_string),
        })
        .collect()
}

// ---- ProvisionCertifiedProvider ------------------------------------------------------------

pub async fn provision(
    ctx: &Ctx<'_>,
    domain: Option<&str>,
    offer: Option<&str>,
    form: Option<&DirectForm>,
) -> AppResult<SubmitResult> {
    let domain = parse_domain(domain)?;
    let offer: Offer = offer
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Invalid::new("DirectOfferType", "is required"))?
        .parse()
        .map_err(|e: Invalid| Refusal::Offer(e.message))?;
    let form = form.ok_or_else(|| Refusal::EmptyForm("(form is missing)".into()))?;
    check_size(form)?;
    let org_input = form
        .organization
        .as_ref()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Refusal::EmptyForm("(form.organization is missing)".into()))?;
    let category: CertificateCategory = match text(&form.organization_type) {
        None => return Err(Invalid::new("organizationType", "is required").into()),
        Some(t) => match t.parse() {
            Ok(c) if c != CertificateCategory::Patient => c,
            _ => {
                return Err(Refusal::InvalidOrganizationType(format!(
                    "({t}: expected CoveredEntity, BusinessAssociate or HealthEntity)"
                ))
                .into());
            }
        },
    };
    let defaults = settings(&form.default_settings)?;
    if form.addresses.len() > offer.address_cap() as usize {
        return Err(Refusal::Offer(format!(
            "{offer} allows {} Direct addresses; the form has {}",
            offer.address_cap(),
            form.addresses.len()
        ))
        .into());
    }
    let department = text(&form.department_name);

    let mut conn = ctx.db.acquire().await?;
    let verified = resolve_organization(&mut conn, org_input).await?;
    // A registry organization that is suspended, nullified or pending cannot be provisioned.
    if let Some(why) =
        crate::service::registry::provisioning_refusal(&mut conn, verified.certified_id).await?
    {
        return Err(Refusal::NoVerifiedOrganization(format!(
            "(certified_id {} {why})",
            verified.certified_id
        ))
        .into());
    }
    if category == CertificateCategory::CoveredEntity && !verified.healthcare_provider {
        return Err(Refusal::NotHealthcareProvider(format!(
            "(certified_id {})",
            verified.certified_id
        ))
        .into());
    }
    if rows::domain_taken(&mut conn, domain.as_str()).await? {
        return Err(Refusal::DomainTaken(domain.to_string()).into());
    }
    let mut users = Vec::new();
    let mut user_errors = BTreeMap::new();
    for (i, p) in form.authorized_users.iter().enumerate() {
        match resolve_person(&mut conn, ctx.identity_key, p).await {
            Ok(row) => users.push(row),
            Err(e) => {
                user_errors.insert(i, item_error(e)?);
            }
        }
    }
    let mut admins = Vec::new();
    for p in &form.administrators {
        admins.push(resolve_person(&mut conn, ctx.identity_key, p).await?);
    }
    let (valid, errors) =
        check_new_addresses(&mut conn, ctx.identity_key, &domain, &form.addresses).await?;
    drop(conn);
    // All or nothing: one bad item and the organization is not created.
    if !errors.is_empty() || !user_errors.is_empty() {
        let why = "not provisioned: another item of this request failed";
        let user_results = form
            .authorized_users
            .iter()
            .enumerate()
            .map(|(i, p)| ItemResult {
                key: text(&p.idp_id).unwrap_or_default().to_owned(),
                status: ItemStatus::ProvisionFailed,
                message: user_errors
                    .get(&i)
                    .map_or_else(|| why.to_owned(), ToString::to_string),
            })
            .collect();
        let addresses = failed_items(form, &errors, why);
        let first = errors
            .into_values()
            .next()
            .or_else(|| user_errors.into_values().next());
        return Ok(SubmitResult {
            error: first,
            payment: None,
            addresses,
            users: user_results,
        });
    }
    let hashes = hash_passwords(&valid).await?;

    let today = ctx.now.date_naive();
    let expires = today + Months::new(12);
    let price = offer_price(ctx.offers, offer)?;
    let mut tx = ctx.db.begin().await?;
    let new = rows::NewOrganization {
        domain: domain.as_str(),
        name: &verified.name,
        status: org_status::REGISTERED,
        category: category.as_str(),
        offer_type: &offer.to_string(),
        address_cap: offer.address_cap() as i32,
        department,
        reseller_id: ctx.reseller,
        certified_id: verified.certified_id,
        default_settings: defaults.to_json(),
        service_start: today,
        service_expires: expires,
        created_at: ctx.now,
    };
    let org_id = rows::insert_organization(&mut tx, &new)
        .await?
        .ok_or_else(|| Refusal::DomainTaken(domain.to_string()))?;
    let org_key = org_id.to_string();
    store::audit::record(
        &mut tx,
        ctx.actor
            .audit("organization.provision", "organization", &org_key),
    )
    .await?;
    for (role, people) in [("authorized_user", &users), ("administrator", &admins)] {
        for p in people {
            rows::insert_person(&mut tx, org_id, role, p).await?;
        }
    }
    let inserted = insert_addresses(&mut tx, ctx, org_id, &domain, &valid, &hashes).await?;
    if let Some(pos) = inserted.iter().position(|ok| !ok) {
        let name = &valid[pos].username;
        return Err(Refusal::Account(format!("{name}@{domain} already exists")).into());
    }
    let request = CertificateRequest {
        organization: domain.to_string(),
        address: None,
        category: Some(category.as_str().to_owned()),
        years: 1,
        auto_renew: true,
    };
    pki_service::request_certificate_in(&mut tx, ctx.pki, &request, &ctx.actor).await?;
    let product = Product {
        name: offer.to_string(),
        description: offer.description(),
        quantity: 1,
        offer_price: price,
        sale_price: price,
        amount: price,
        start_date: today,
        expire_date: expires,
    };
    let detail = format!(
        "{offer} for {domain}: domain certificate ({}) and {} Direct address(es)",
        category.as_str(),
        valid.len()
    );
    let payment = pay(
        &mut tx,
        ctx,
        org_id,
        "ProvisionCertifiedProvider",
        vec![product],
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(SubmitResult {
        error: None,
        payment: Some(payment),
        addresses: valid
            .iter()
            .map(|v| ItemResult {
                key: v.username.clone(),
                status: ItemStatus::Provisioned,
                message: v.provisioned(&domain),
            })
            .collect(),
        users: users
            .iter()
            .map(|u| ItemResult {
                key: u.idp_id.to_string(),
                status: ItemStatus::Provisioned,
                message: "authorized user added".into(),
            })
            .collect(),
    })
}

async fn resolve_organization(
    conn: &mut PgConnection,
    o: &OrganizationInput,
) -> AppResult<rows::VerifiedOrgRow> {
    if let Some(id) = text(&o.certified_id) {
        let id = crate::domain::identity::CertifiedId::parse(id)?;
        return rows::verified_org(conn, id.get()).await?.ok_or_else(|| {
            Refusal::NoVerifiedOrganization(format!("(certified_id {})", id.get())).into()
        });
    }
    let name = text(&o.name)
        .ok_or_else(|| Invalid::new("organization.name", "is required without certified_id"))?;
    let taxid = text(&o.taxid)
        .ok_or_else(|| Invalid::new("organization.taxid", "is required without certified_id"))?;
    let state = text(&o.state)
        .ok_or_else(|| Invalid::new("organization.state", "is required without certified_id"))?;
    let state = UsState::parse(state).map_err(|_| Refusal::InvalidState(format!("({state})")))?;
    let digits: String = taxid.chars().filter(char::is_ascii_digit).collect();
    rows::verified_org_by_identity(conn, name, &digits, state.as_str())
        .await?
        .ok_or_else(|| {
            Refusal::NoVerifiedOrganization(format!("(name {name}, taxid, state {state:?})")).into()
        })
}

/// The organization behind `domain`, which must belong to the calling reseller, locked.
async fn own_organization(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    domain: &DirectDomain,
) -> AppResult<rows::OrgRow> {
    let org = rows::lock_org_by_domain(tx, domain.as_str())
        .await?
        .ok_or_else(|| Refusal::UnknownDomain(domain.to_string()))?;
    if org.reseller_id != ctx.reseller {
        return Err(AppError::Forbidden(format!(
            "organization {domain} belongs to another reseller"
        )));
    }
    Ok(org)
}

/// Which list of the form an add/update call works on.
#[derive(Clone, Copy)]
enum Items {
    Addresses,
    Users,
}

/// The common start of the add/update calls: a valid domain, a form with items, and the
/// caller's own organization, locked in a new transaction.
async fn open_form_call<'f>(
    ctx: &Ctx<'_>,
    domain: Option<&str>,
    form: Option<&'f DirectForm>,
    items: Items,
) -> AppResult<(
    DirectDomain,
    &'f DirectForm,
    sqlx::Transaction<'static, sqlx::Postgres>,
    rows::OrgRow,
)> {
    let domain = parse_domain(domain)?;
    let (has_items, list) = match items {
        Items::Addresses => (
            form.is_some_and(|f| !f.addresses.is_empty()),
            "directAddresses",
        ),
        Items::Users => (
            form.is_some_and(|f| !f.authorized_users.is_empty()),
            "authorizedUsers",
        ),
    };
    let form = form
        .filter(|_| has_items)
        .ok_or_else(|| Refusal::EmptyForm(format!("(form.{list} is empty)")))?;
    check_size(form)?;
    let mut tx = ctx.db.begin().await?;
    let org = own_organization(&mut tx, ctx, &domain).await?;
    Ok((domain, form, tx, org))
}

/// Items one request may carry in each list: the largest offer's addresses. Every item costs
/// database work (and an address or password update an argon2 hash), all in one transaction.
pub const MAX_FORM_ITEMS: usize = 750;

fn check_size(form: &DirectForm) -> AppResult<()> {
    for (list, n) in [
        ("directAddresses", form.addresses.len()),
        ("authorizedUsers", form.authorized_users.len()),
        ("administrators", form.administrators.len()),
    ] {
        if n > MAX_FORM_ITEMS {
            return Err(Invalid::new(
                list,
                format!("at most {MAX_FORM_ITEMS} items per request (this one has {n})"),
            )
            .into());
        }
    }
    Ok(())
}

fn first_error(items: &[ItemResult], errors: Vec<AppError>) -> Option<AppError> {
    if items.iter().all(ItemResult::success) {
        None
    } else {
        errors.into_iter().next()
    }
}

// ---- AddDirectAddressesToCertifiedProvider -------------------------------------------------

pub async fn add_addresses(
    ctx: &Ctx<'_>,
    domain: Option<&str>,
    form: Option<&DirectForm>,
) -> AppResult<SubmitResult> {
    let (domain, form, mut tx, org) = open_form_call(ctx, domain, form, Items::Addresses).await?;
    if org.status == org_status::DISABLED {
        return Err(AppError::Conflict(format!(
            "organization {domain} is Disabled"
        )));
    }
    let (valid, mut errors) =
        check_new_addresses(&mut tx, ctx.identity_key, &domain, &form.addresses).await?;
    let cap = i64::from(org.address_cap.unwrap_or(i32::MAX));
    let existing = rows::count_addresses(&mut tx, org.id).await?;
    if existing + valid.len() as i64 > cap {
        return Err(Refusal::Offer(format!(
            "the offer {} allows {cap} Direct addresses; {domain} has {existing} and this request adds {}",
            org.offer_type.as_deref().unwrap_or("-"),
            valid.len()
        ))
        .into());
    }
    if valid.is_empty() {
        return Ok(SubmitResult {
            addresses: failed_items(form, &errors, "not provisioned"),
            error: errors.into_values().next(),
            ..Default::default()
        });
    }
    // Hashing happens inside the transaction: the organization row stays locked so a
    // concurrent call cannot slip past the address cap.
    let hashes = hash_passwords(&valid).await?;
    let inserted = insert_addresses(&mut tx, ctx, org.id, &domain, &valid, &hashes).await?;
    let mut results: BTreeMap<usize, ItemResult> = BTreeMap::new();
    for (v, ok) in valid.iter().zip(&inserted) {
        let (status, message) = if *ok {
            (ItemStatus::Provisioned, v.provisioned(&domain))
        } else {
            let e = Refusal::Account(format!("{}@{domain} already exists", v.username));
            let m = e.to_string();
            errors.insert(v.index, e.into());
            (ItemStatus::ProvisionFailed, m)
        };
        results.insert(
            v.index,
            ItemResult {
                key: v.username.clone(),
                status,
                message,
            },
        );
    }
    let added = inserted.iter().filter(|ok| **ok).count() as i64;
    let payment = if added > 0 {
        let today = ctx.now.date_naive();
        let expires = org.service_expires.unwrap_or(today);
        let nlp = org
            .offer_type
            .as_deref()
            .and_then(|o| o.parse::<Offer>().ok())
            .is_some_and(|o| o.nlp);
        let yearly = Cents::from_dollars(address_price_dollars(ctx.offers, nlp))?;
        let start = org.service_start.unwrap_or(today);
        let sale = prorate(yearly, today, start, expires);
        let product = Product {
            name: "DirectAddress".into(),
            description: format!(
                "Additional Direct address for {domain}, prorated to the service expiry"
            ),
            quantity: added,
            offer_price: yearly,
            sale_price: sale,
            amount: sale.times(added),
            start_date: today,
            expire_date: expires,
        };
        let detail = format!("{added} additional Direct address(es) for {domain}");
        Some(
            pay(
                &mut tx,
                ctx,
                org.id,
                "AddDirectAddressesToCertifiedProvider",
                vec![product],
                detail,
            )
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;
    let why = |i: usize| errors.get(&i).map(ToString::to_string).unwrap_or_default();
    let addresses: Vec<ItemResult> = form
        .addresses
        .iter()
        .enumerate()
        .map(|(i, a)| {
            results.remove(&i).unwrap_or_else(|| ItemResult {
                key: item_key(a, i),
                status: ItemStatus::ProvisionFailed,
                message: why(i),
            })
        })
        .collect();
    let error = first_error(&addresses, errors.into_values().collect());
    Ok(SubmitResult {
        error,
        payment,
        addresses,
        users: Vec::new(),
    })
}

// ---- AddAuthorizedUsersToCertifiedProvider -------------------------------------------------

pub async fn add_users(
    ctx: &Ctx<'_>,
    domain: Option<&str>,
    form: Option<&DirectForm>,
) -> AppResult<SubmitResult> {
    let (_, form, mut tx, org) = open_form_call(ctx, domain, form, Items::Users).await?;
    let mut users = Vec::new();
    let mut errors = Vec::new();
    for (i, p) in form.authorized_users.iter().enumerate() {
        let key = text(&p.idp_id)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("authorizedUsers[{i}]"));
        let result = match resolve_person(&mut tx, ctx.identity_key, p).await {
            Ok(person) => {
                let key = person.idp_id.to_string();
                match rows::insert_person(&mut tx, org.id, "authorized_user", &person).await? {
                    Some(id) => {
                        let id = id.to_string();
                        store::audit::record(
                            &mut tx,
                            ctx.actor.audit("person.add", "organization_person", &id),
                        )
                        .await?;
                        ItemResult {
                            key,
                            status: ItemStatus::Provisioned,
                            message: "authorized user added".into(),
                        }
                    }
                    None => ItemResult {
                        key,
                        status: ItemStatus::Updated,
                        message: "already an authorized user; nothing changed".into(),
                    },
                }
            }
            Err(e) => {
                let e = item_error(e)?;
                let r = ItemResult {
                    key,
                    status: ItemStatus::ProvisionFailed,
                    message: e.to_string(),
                };
                errors.push(e);
                r
            }
        };
        users.push(result);
    }
    tx.commit().await?;
    Ok(SubmitResult {
        error: first_error(&users, errors),
        payment: None,
        addresses: Vec::new(),
        users,
    })
}

// ---- UpdateDirectAddressPassword -----------------------------------------------------------

pub async fn update_passwords(
    ctx: &Ctx<'_>,
    domain: Option<&str>,
    form: Option<&DirectForm>,
) -> AppResult<SubmitResult> {
    let (domain, form, mut tx, _) = open_form_call(ctx, domain, form, Items::Addresses).await?;
    let mut addresses = Vec::new();
    let mut errors = Vec::new();
    for (i, a) in form.addresses.iter().enumerate() {
        let key = item_key(a, i);
        match update_one(&mut tx, ctx, &domain, a).await {
            Ok(message) => addresses.push(ItemResult {
                key,
                status: ItemStatus::Updated,
                message,
            }),
            Err(e) => {
                let e = item_error(e)?;
                addresses.push(ItemResult {
                    key,
                    status: ItemStatus::UpdateFailed,
                    message: e.to_string(),
                });
                errors.push(e);
            }
        }
    }
    tx.commit().await?;
    Ok(SubmitResult {
        error: first_error(&addresses, errors),
        payment: None,
        addresses,
        users: Vec::new(),
    })
}

async fn update_one(
    tx: &mut PgConnection,
    ctx: &Ctx<'_>,
    domain: &DirectDomain,
    a: &AddressInput,
) -> AppResult<String> {
    let username =
        parse_username(text(&a.username).ok_or_else(|| Invalid::new("username", "is required"))?)?;
    let id = rows::address_id(tx, domain.as_str(), &username)
        .await?
        .ok_or_else(|| Refusal::UnknownAddress(format!("{username}@{domain}")))?;
    let settings = settings(&a.settings)?;
    // The service ignores an empty password rather than clearing it.
    let hash = match given_password(a.password.as_deref()) {
        None => None,
        Some(password) => {
            check_password(password)?;
            Some(secrets::hash_secret(password.to_owned()).await?)
        }
    };
    rows::update_address(tx, id, hash.as_deref(), &settings.to_json()).await?;
    let object = id.to_string();
    store::audit::record(
        tx,
        ctx.actor.audit("address.update", "direct_address", &object),
    )
    .await?;
    Ok(match hash {
        Some(_) => "password updated".into(),
        None => "empty password ignored; password unchanged".into(),
    })
}

// ---- listing -------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct AddressDetail {
    pub idp_id: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: String,
    pub user_type: String,
    /// Every setting, effective (address over organization over default).
    pub settings: Settings,
}

#[derive(Debug, Clone)]
pub struct OrganizationDetail {
    pub certified_id: Option<i64>,
    pub domain: String,
    pub name: String,
    pub created_date: NaiveDate,
    pub tax_id: Option<String>,
    pub npi: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zipcode: Option<String>,
    pub status: String,
    pub category: Option<String>,
    pub authorized_users: Vec<rows::PersonRow>,
    pub addresses: Vec<AddressDetail>,
    pub default_settings: Settings,
    pub has_trusted_agent: bool,
}

pub async fn list(db: &PgPool, reseller: Uuid) -> AppResult<Vec<OrganizationDetail>> {
    details(db, reseller, None).await
}

pub async fn check(
    db: &PgPool,
    reseller: Uuid,
    domain: Option<&str>,
) -> AppResult<OrganizationDetail> {
    let domain = own_domain(db, reseller, domain).await?;
    details(db, reseller, Some(domain.as_str()))
        .await?
        .pop()
        .ok_or_else(|| Refusal::UnknownDomain(domain.to_string()).into())
}

/// The domain of one of the reseller's organizations: 010 when it is not a domain, 208 when
/// no organization has it, 013 when another reseller's does.
pub async fn own_domain(
    db: &PgPool,
    reseller: Uuid,
    domain: Option<&str>,
) -> AppResult<DirectDomain> {
    let domain = parse_domain(domain)?;
    match rows::org_reseller(db, domain.as_str()).await? {
        None => Err(Refusal::UnknownDomain(domain.to_string()).into()),
        Some(owner) if owner != reseller => Err(AppError::Forbidden(format!(
            "organization {domain} belongs to another reseller"
        ))),
        Some(_) => Ok(domain),
    }
}

async fn details(
    db: &PgPool,
    reseller: Uuid,
    domain: Option<&str>,
) -> AppResult<Vec<OrganizationDetail>> {
    let orgs = rows::organizations(db, reseller, domain).await?;
    let ids: Vec<i64> = orgs.iter().map(|o| o.id).collect();
    let mut users: BTreeMap<i64, Vec<rows::PersonRow>> = BTreeMap::new();
    for p in rows::authorized_users(db, &ids).await? {
        users.entry(p.organization_id).or_default().push(p);
    }
    let mut addresses: BTreeMap<i64, Vec<rows::AddressRow>> = BTreeMap::new();
    for a in rows::addresses(db, &ids).await? {
        addresses.entry(a.organization_id).or_default().push(a);
    }
    Ok(orgs
        .into_iter()
        .map(|o| {
            let defaults = Settings::from_json(&o.default_settings);
            let addresses = addresses
                .remove(&o.id)
                .unwrap_or_default()
                .into_iter()
                .map(|a| AddressDetail {
                    settings: Settings::from_json(&a.settings).effective(&defaults),
                    idp_id: a.idp_id,
                    first_name: a.first_name,
                    last_name: a.last_name,
                    username: a.username,
                    user_type: a.user_type,
                })
                .collect();
            let street = match (&o.address_line1, &o.address_line2) {
                (Some(a), Some(b)) if !b.is_empty() => Some(format!("{a}, {b}")),
                (a, _) => a.clone(),
            };
            let has_trusted_agent = o.has_trusted_agent
                || o.other_info
                    .get("hasTrustedAgent")
                    .is_some_and(|v| v.as_bool() == Some(true) || v.as_i64() == Some(1));
            OrganizationDetail {
                certified_id: o.certified_id,
                domain: o.domain,
                name: o.name,
                created_date: o.created_at.date_naive(),
                tax_id: o.tax_id.map(|t| ein_format(&t)),
                npi: o.npi,
                address: street,
                city: o.city,
                state: o.state,
                zipcode: o.zip,
                status: o.status,
                category: o.certificate_category,
                authorized_users: users.remove(&o.id).unwrap_or_default(),
                addresses,
                default_settings: defaults.effective(&Settings::default()),
                has_trusted_agent,
            }
        })
        .collect())
}

/// Tax ids are kept as digits; an EIN reads back as NN-NNNNNNN.
fn ein_format(digits: &str) -> String {
    if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}", &digits[..2], &digits[2..])
    } else {
        digits.to_owned()
    }
}
