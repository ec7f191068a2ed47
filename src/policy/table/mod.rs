//! The field tables of CPCE R10-14, one per version of the text, expressed as data:
//! [`r2021::FIELDS`] (the text in force since 21 October 2021) and [`r2012::FIELDS`] (the
//! 2012 text). Each version is its own table — never an edit in place of the other.
//!
//! Both the filter ([`super::Policy::apply`]) and `policy show` read these tables, so what
//! the compliance team reads is what the code does. Each row is one leaf field of
//! `CdrEvent`, its category in R10-13 / R10-14, and one rule per column with the legal
//! reference that justifies keeping or removing it. Both tables list the same paths in the
//! same order (the schema's; a test checks it).
//!
//! The filter builds every output record by *copying* the fields a row allows into an
//! empty event (an allowlist): a field that has no row here — a new schema field, an
//! unknown field, the input key or headers — can never reach an output.

use crate::schema::CdrEvent;

/// What a column does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Keep,
    /// Kept only when the record is about the calling party — direction ORIGINATING, or a
    /// DATA_SESSION / SUPPLEMENTARY_SERVICE record with no direction (the subscriber who
    /// started it): reading 2, "origin vs user in billing".
    KeepIfCaller,
    /// Allowed by the text, removed unless the operator turns it on with `keep`: billing
    /// does not normally need it (R10-14 III, « nécessaires à la facturation »).
    Optional,
    Remove,
}

impl Rule {
    pub fn symbol(self) -> &'static str {
        match self {
            Rule::Keep => "Y",
            Rule::KeepIfCaller => "Y if about the caller",
            Rule::Optional => "O (optional)",
            Rule::Remove => "N",
        }
    }

    /// Whether the text allows keeping the field (an operator may turn an optional one on).
    pub fn allows(self) -> bool {
        self != Rule::Remove
    }
}

/// The columns of the table: billing splits by service (R10-14 II adds data for
/// telephony only), security is one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    BillingTelephony,
    BillingOther,
    Security,
}

impl Column {
    pub const ALL: [Column; 3] = [
        Column::BillingTelephony,
        Column::BillingOther,
        Column::Security,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::BillingTelephony => "Billing, telephony",
            Column::BillingOther => "Billing, other",
            Column::Security => "Security",
        }
    }
}

/// A cell: the rule and the text that justifies it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Cell {
    pub rule: Rule,
    pub basis: &'static str,
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct FieldSpec {
    /// Dotted path, as in the contract (`served.imsi`).
    pub path: &'static str,
    /// Category in R10-13 I / R10-14 (`a (user)`, `b`, `content`, ...).
    pub category: &'static str,
    pub billing_telephony: Cell,
    pub billing_other: Cell,
    pub security: Cell,
    /// Required by the contract: an operator may not remove it.
    pub required: bool,
    pub(crate) access: Access,
}

impl FieldSpec {
    pub fn cell(&self, column: Column) -> Cell {
        match column {
            Column::BillingTelephony => self.billing_telephony,
            Column::BillingOther => self.billing_other,
            Column::Security => self.security,
        }
    }

    /// The field group (`served`, `network`, ...) used in metrics labels.
    pub fn group(&self) -> &'static str {
        self.path.split('.').next().unwrap_or(self.path)
    }
}

impl std::fmt::Debug for FieldSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldSpec")
            .field("path", &self.path)
            .finish()
    }
}

impl FieldSpec {
    /// True when `event` holds a non-default value for this field.
    pub fn is_present(&self, event: &CdrEvent) -> bool {
        (self.access.present)(event)
    }
}

const fn keep(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::Keep,
        basis,
    }
}
const fn origin(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::KeepIfCaller,
        basis,
    }
}
const fn optional(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::Optional,
        basis,
    }
}
const fn remove(basis: &'static str) -> Cell {
    Cell {
        rule: Rule::Remove,
        basis,
    }
}

/// How a row reads and copies its field.
#[derive(Clone, Copy)]
pub(crate) struct Access {
    /// Copies the field from the source into the output event.
    pub(crate) copy: fn(&CdrEvent, &mut CdrEvent),
    /// Moves the field from the source into the output event (the source keeps a
    /// default): for the last purpose of an event, no copy of its strings.
    pub(crate) take: fn(&mut CdrEvent, &mut CdrEvent),
    /// True when the event holds a non-default value for the field.
    pub(crate) present: fn(&CdrEvent) -> bool,
}

/// A top-level field.
macro_rules! top {
    ($f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| d.$f = s.$f.clone(),
            take: |s: &mut CdrEvent, d: &mut CdrEvent| d.$f = std::mem::take(&mut s.$f),
            present: |s: &CdrEvent| is_set(&s.$f),
        }
    };
}

/// A field of a nested message: the sub-message is created in the output only when the
/// source holds a non-default value, so an output never carries empty shells.
macro_rules! nested {
    ($m:ident . $f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| {
                if let Some(src) = &s.$m {
                    if is_set(&src.$f) {
                        d.$m.get_or_insert_with(Default::default).$f = src.$f.clone();
                    }
                }
            },
            take: |s: &mut CdrEvent, d: &mut CdrEvent| {
                if let Some(src) = s.$m.as_mut() {
                    if is_set(&src.$f) {
                        d.$m.get_or_insert_with(Default::default).$f = std::mem::take(&mut src.$f);
                    }
                }
            },
            present: |s: &CdrEvent| s.$m.as_ref().is_some_and(|m| is_set(&m.$f)),
        }
    };
}

/// A field of each element of `supplementary_services`.
macro_rules! each_service {
    ($f:ident) => {
        Access {
            copy: |s: &CdrEvent, d: &mut CdrEvent| {
                if s.supplementary_services.is_empty() {
                    return;
                }
                d.supplementary_services
                    .resize_with(s.supplementary_services.len(), Default::default);
                for (src, dst) in s
                    .supplementary_services
                    .iter()
                    .zip(d.supplementary_services.iter_mut())
                {
                    dst.$f = src.$f.clone();
                }
            },
            take: |s: &mut CdrEvent, d: &mut CdrEvent| {
                if s.supplementary_services.is_empty() {
                    return;
                }
                d.supplementary_services
                    .resize_with(s.supplementary_services.len(), Default::default);
                for (src, dst) in s
                    .supplementary_services
                    .iter_mut()
                    .zip(d.supplementary_services.iter_mut())
                {
                    dst.$f = std::mem::take(&mut src.$f);
                }
            },
            present: |s: &CdrEvent| s.supplementary_services.iter().any(|x| is_set(&x.$f)),
        }
    };
}

/// A field no purpose keeps: there is no code that could copy it.
macro_rules! never {
    ($f:ident) => {
        Access {
            copy: copy_nothing,
            take: take_nothing,
            present: |s: &CdrEvent| is_set(&s.$f),
        }
    };
    ($m:ident . $f:ident) => {
        Access {
            copy: copy_nothing,
            take: take_nothing,
            present: |s: &CdrEvent| s.$m.as_ref().is_some_and(|m| is_set(&m.$f)),
        }
    };
}

fn copy_nothing(_: &CdrEvent, _: &mut CdrEvent) {}
fn take_nothing(_: &mut CdrEvent, _: &mut CdrEvent) {}

/// True for a non-default (proto3: present) value.
fn is_set<T: Default + PartialEq>(v: &T) -> bool {
    *v != T::default()
}

/// One row: path, category, the three cells, how the field is read, and whether the
/// contract requires it.
macro_rules! row {
    ($path:literal, $cat:literal, $bt:expr, $bo:expr, $sec:expr, $copy:expr) => {
        row!($path, $cat, $bt, $bo, $sec, $copy, false)
    };
    ($path:literal, $cat:literal, $bt:expr, $bo:expr, $sec:expr, $access:expr, $req:expr) => {
        FieldSpec {
            path: $path,
            category: $cat,
            billing_telephony: $bt,
            billing_other: $bo,
            security: $sec,
            required: $req,
            access: $access,
        }
    };
}

// The tables use the macros above (textual scope reaches modules declared after them).
pub mod r2012;
pub mod r2021;

/// The rows' paths, groups and presence tests, which every version shares (same schema,
/// same order): for metrics and reports that do not read a verdict.
pub fn schema_rows() -> &'static [FieldSpec] {
    r2021::FIELDS
}

/// Looks a row up by its exact path in a table.
pub fn field_in(table: &'static [FieldSpec], path: &str) -> Option<&'static FieldSpec> {
    table.iter().find(|f| f.path == path)
}

/// The rows a configuration name selects in a table: an exact path (`terminal.imei`) or a
/// whole group (`location`). Empty when the name matches nothing.
pub fn select_in(table: &'static [FieldSpec], name: &str) -> Vec<&'static FieldSpec> {
    table
        .iter()
        .filter(|f| f.path == name || f.group() == name)
        .collect()
}
