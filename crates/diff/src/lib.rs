//! What changed in meaning between two versions of a contract, and
//! whether a caller written against the old one breaks.
//!
//! [`diff`] compares two contracts of one service section by section and
//! classifies every change for the service's callers:
//!
//! - **input** and `requires`: refusing an input that used to be accepted
//!   is breaking; accepting more is compatible;
//! - **output** and `ensures`: an answer the old contract ruled out is
//!   breaking (a wider schema, a weaker `ensures`); a narrower one is
//!   compatible;
//! - **errors**: an error due where the old contract succeeded, or another
//!   error than before, or a changed status, is breaking; an error no
//!   longer due is compatible;
//! - **effects** are for review, **limits** break when lowered.
//!
//! Schemas are compared keyword by keyword where their meaning allows it
//! ([`schema`]); `pattern`, combinators and every CEL condition are
//! compared by differential sampling: values drawn from one side, judged
//! by the other. A sampled verdict says so and carries its witness.
//!
//! Architecture invariant: reads two contracts and nothing else; which
//! callers map a removed error is the caller's business (the CLI knows
//! the app).

mod pairing;
pub mod schema;

use std::fmt;

use mote_contract::{Bindings, Contract, Schema};
use mote_verify::double::{DoubleAnswer, Doubles};
use mote_verify::generate::{self, Hints};
use semver::Version;
use serde_json::{Value, json};

use crate::schema::Direction;

pub use pairing::{Pairing, pair};

/// What a change means for a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A caller written against the old contract can break.
    Breaking,
    /// Nothing a caller relied on changed, but a person should look (a new
    /// effect, a changed resource limit).
    Review,
    /// Every caller keeps working.
    Compatible,
}

impl Class {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Breaking => "breaking",
            Class::Review => "review",
            Class::Compatible => "compatible",
        }
    }
}

/// The part of the contract a change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// `[service]`: the name callers use.
    Service,
    /// `[input]`.
    Input,
    /// `requires`.
    Requires,
    /// `[output]`.
    Output,
    /// `ensures`.
    Ensures,
    /// `[[error]]`.
    Errors,
    /// `[effects]`.
    Effects,
    /// `[limits]`.
    Limits,
    /// `[[example]]` and `[flow]`: what documents or implements the
    /// contract without changing it for callers.
    Other,
}

impl Area {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Service => "service",
            Area::Input => "input",
            Area::Requires => "requires",
            Area::Output => "output",
            Area::Ensures => "ensures",
            Area::Errors => "errors",
            Area::Effects => "effects",
            Area::Limits => "limits",
            Area::Other => "other",
        }
    }
}

/// How a change was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// From the contracts' text and schema keywords: exact.
    Structural,
    /// By drawing values from one side and judging them by the other:
    /// a witness proves a difference; no witness is evidence, not proof.
    Sampled {
        /// Values drawn from each side.
        samples: usize,
    },
}

/// The version bump a change needs, in semver's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bump {
    /// No change in meaning.
    None,
    /// A change no caller can observe (examples, a rewritten condition
    /// with the same meaning in every sample).
    Patch,
    /// A new capability: more inputs, stronger guarantees, a new effect.
    Minor,
    /// A breaking change.
    Major,
}

impl Bump {
    /// A stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::None => "none",
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change in meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// What it means for callers.
    pub class: Class,
    /// Where it is.
    pub area: Area,
    /// What changed.
    pub what: String,
    /// Why it is classified so.
    pub why: String,
    /// How it was decided.
    pub basis: Basis,
    /// A value that shows it, where one was found: an input (input,
    /// `requires`, errors), an output (output), or `{"input", "output"}`
    /// (ensures).
    pub witness: Option<Value>,
    /// The version bump it needs.
    pub bump: Bump,
    /// The code of the error this change removes: a tool that knows the
    /// app lists the flows that map it in `on_error`.
    pub removed_error: Option<String>,
}

/// How a diff samples.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Fixes every sampled value: the same seed gives the same diff.
    pub seed: u64,
    /// Values drawn from each side of each comparison.
    pub samples: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            samples: 2_000,
        }
    }
}

/// Everything that changed between two versions of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ContractDiff {
    /// The service (the new contract's name).
    pub service: String,
    /// The old version.
    pub old_version: Version,
    /// The new version.
    pub new_version: Version,
    /// The changes, breaking first.
    pub changes: Vec<Change>,
    /// The bump the changes need.
    pub required: Bump,
    /// The bump the versions make; `None` when the new version is lower.
    pub made: Option<Bump>,
}

impl ContractDiff {
    /// Whether any change breaks callers.
    pub fn breaking(&self) -> bool {
        self.changes.iter().any(|c| c.class == Class::Breaking)
    }

    /// Whether the new version is at least the bump the changes need.
    pub fn version_ok(&self) -> bool {
        self.made.is_some_and(|made| made >= self.required)
    }

    /// The lowest version the new contract may carry.
    pub fn least_version(&self) -> Version {
        let old = &self.old_version;
        match (self.required, old.major) {
            (Bump::None, _) => old.clone(),
            (Bump::Major, 0) => Version::new(0, old.minor.saturating_add(1), 0),
            (Bump::Major, _) => Version::new(old.major.saturating_add(1), 0, 0),
            (Bump::Minor, 0) | (Bump::Patch, _) => {
                Version::new(old.major, old.minor, old.patch.saturating_add(1))
            }
            (Bump::Minor, _) => Version::new(old.major, old.minor.saturating_add(1), 0),
        }
    }
}

/// Compares `old` with `new`, two contracts of one service.
pub fn diff(old: &Contract, new: &Contract, options: &Options) -> ContractDiff {
    let mut changes = Vec::new();
    if old.hash != new.hash {
        let sides = Sides::draw(old, new, options);
        service(old, new, &mut changes);
        section(
            Section {
                area: Area::Input,
                old: &old.input,
                new: &new.input,
                narrower: Class::Breaking,
                wider: Class::Compatible,
            },
            &sides.old_inputs,
            &sides.new_inputs,
            options.samples,
            &mut changes,
        );
        requires(old, new, &sides, options.samples, &mut changes);
        section(
            Section {
                area: Area::Output,
                old: &old.output,
                new: &new.output,
                narrower: Class::Compatible,
                wider: Class::Breaking,
            },
            &sides.old_outputs,
            &sides.new_outputs,
            options.samples,
            &mut changes,
        );
        ensures(old, new, &sides, options, &mut changes);
        errors(old, new, &sides, options.samples, &mut changes);
        effects(old, new, &mut changes);
        limits(old, new, &mut changes);
        for (key, what) in [("examples", "examples"), ("flow", "the flow's steps")] {
            if old.json.get(key) != new.json.get(key) {
                changes.push(Change {
                    class: Class::Compatible,
                    area: Area::Other,
                    what: format!("{what} changed"),
                    why: "callers rely on the contract, which is judged in the other sections"
                        .into(),
                    basis: Basis::Structural,
                    witness: None,
                    bump: Bump::Patch,
                    removed_error: None,
                });
            }
        }
    }
    changes.sort_by_key(|c| (c.class, c.area));
    let required = changes.iter().map(|c| c.bump).max().unwrap_or(Bump::None);
    ContractDiff {
        service: new.service.name.to_string(),
        old_version: old.service.version.clone(),
        new_version: new.service.version.clone(),
        made: made(&old.service.version, &new.service.version),
        changes,
        required,
    }
}

/// The bump from `old` to `new`, read as Cargo reads versions (below 1.0,
/// the minor number is the breaking one); `None` when `new` is lower.
pub fn made(old: &Version, new: &Version) -> Option<Bump> {
    if new < old {
        return None;
    }
    Some(if old.major == 0 {
        if new.major > 0 || new.minor > old.minor {
            Bump::Major
        } else if new.patch > old.patch {
            Bump::Minor
        } else if new > old {
            Bump::Patch
        } else {
            Bump::None
        }
    } else if new.major > old.major {
        Bump::Major
    } else if new.minor > old.minor {
        Bump::Minor
    } else if new > old {
        Bump::Patch
    } else {
        Bump::None
    })
}

/// The values drawn once per diff.
struct Sides {
    old_inputs: Vec<Value>,
    new_inputs: Vec<Value>,
    old_outputs: Vec<Value>,
    new_outputs: Vec<Value>,
}

impl Sides {
    fn draw(old: &Contract, new: &Contract, options: &Options) -> Sides {
        let hints = Hints::from_contract(old).merged(&Hints::from_contract(new));
        let examples =
            |c: &Contract| -> Vec<Value> { c.examples.iter().map(|e| e.input.clone()).collect() };
        let mut old_inputs = examples(old);
        old_inputs.extend(generate::sample_with(
            &old.input,
            &hints,
            options.seed,
            options.samples,
        ));
        let mut new_inputs = examples(new);
        new_inputs.extend(generate::sample_with(
            &new.input,
            &hints,
            options.seed ^ 1,
            options.samples,
        ));
        let draw_outputs =
            |c: &Contract, seed| generate::sample_with(&c.output, &hints, seed, options.samples);
        Sides {
            old_inputs,
            new_inputs,
            old_outputs: draw_outputs(old, options.seed ^ 2),
            new_outputs: draw_outputs(new, options.seed ^ 3),
        }
    }

    /// Inputs both contracts admit (schema and `requires`).
    fn common_inputs<'a>(
        &'a self,
        old: &'a Contract,
        new: &'a Contract,
    ) -> impl Iterator<Item = &'a Value> {
        self.old_inputs
            .iter()
            .chain(&self.new_inputs)
            .filter(move |x| admits(old, x) && admits(new, x))
    }
}

fn admits(contract: &Contract, input: &Value) -> bool {
    contract.input.is_valid(input)
        && contract
            .unmet_requires(&Bindings::new().with("input", input))
            .is_none()
}

fn service(old: &Contract, new: &Contract, out: &mut Vec<Change>) {
    use mote_contract::Visibility;
    match (old.service.visibility, new.service.visibility) {
        (Visibility::Public, Visibility::Internal) => out.push(Change {
            class: Class::Breaking,
            area: Area::Service,
            what: "public → internal".into(),
            why: "clients outside the app find no such service".into(),
            basis: Basis::Structural,
            witness: None,
            bump: Bump::Major,
            removed_error: None,
        }),
        (Visibility::Internal, Visibility::Public) => out.push(Change {
            class: Class::Review,
            area: Area::Service,
            what: "internal → public".into(),
            why: "any client may now call it: an entry point to review".into(),
            basis: Basis::Structural,
            witness: None,
            bump: Bump::Minor,
            removed_error: None,
        }),
        _ => {}
    }
    if old.service.name != new.service.name {
        out.push(Change {
            class: Class::Breaking,
            area: Area::Service,
            what: format!("renamed `{}` → `{}`", old.service.name, new.service.name),
            why: format!("callers of `{}` find no such service", old.service.name),
            basis: Basis::Structural,
            witness: None,
            bump: Bump::Major,
            removed_error: None,
        });
    }
}

/// One schema section and what each direction means for callers.
struct Section<'a> {
    area: Area,
    old: &'a Schema,
    new: &'a Schema,
    narrower: Class,
    wider: Class,
}

impl Section<'_> {
    fn class(&self, direction: Direction) -> Class {
        match direction {
            Direction::Narrower => self.narrower,
            Direction::Wider => self.wider,
        }
    }

    fn why(&self, direction: Direction) -> String {
        let noun = if self.area == Area::Input {
            "an input"
        } else {
            "an output"
        };
        match direction {
            Direction::Narrower => {
                format!("{noun} the old contract accepted is refused by the new one")
            }
            Direction::Wider => {
                format!("{noun} the old contract refused is accepted by the new one")
            }
        }
    }
}

fn bump(class: Class) -> Bump {
    match class {
        Class::Breaking => Bump::Major,
        Class::Review | Class::Compatible => Bump::Minor,
    }
}

/// `input.lines.*.sku` for the place `/lines/*/sku` of the input.
fn place(area: Area, at: &str) -> String {
    let mut text = area.as_str().to_string();
    for segment in at.split('/').skip(1) {
        text.push('.');
        text.push_str(&segment.replace("~1", "/").replace("~0", "~"));
    }
    text
}

/// A schema section: keyword changes decided structurally (with a sampled
/// witness where one lies at the same place), then what only sampling
/// can decide.
fn section(
    s: Section<'_>,
    old_values: &[Value],
    new_values: &[Value],
    samples: usize,
    out: &mut Vec<Change>,
) {
    if s.old.json() == s.new.json() {
        return;
    }
    let comparison = schema::compare(s.old.json(), s.new.json());
    let paths = |schema: &Schema, v: &Value| -> Vec<String> {
        schema
            .violations(v)
            .into_iter()
            .map(|x| x.instance_path)
            .collect()
    };
    let narrow: Vec<(&Value, Vec<String>)> = old_values
        .iter()
        .filter(|v| s.old.is_valid(v) && !s.new.is_valid(v))
        .map(|v| (v, paths(s.new, v)))
        .collect();
    let wide: Vec<(&Value, Vec<String>)> = new_values
        .iter()
        .filter(|v| s.new.is_valid(v) && !s.old.is_valid(v))
        .map(|v| (v, paths(s.old, v)))
        .collect();
    let mut explained_narrow = vec![false; narrow.len()];
    let mut explained_wide = vec![false; wide.len()];
    for change in &comparison.changes {
        let (pool, explained) = match change.direction {
            Direction::Narrower => (&narrow, &mut explained_narrow),
            Direction::Wider => (&wide, &mut explained_wide),
        };
        let mut witness = None;
        for (i, (value, at)) in pool.iter().enumerate() {
            if at.iter().any(|p| schema::lies_at(p, &change.at)) {
                explained[i] = true;
                witness.get_or_insert_with(|| (*value).clone());
            }
        }
        let class = s.class(change.direction);
        out.push(Change {
            class,
            area: s.area,
            what: format!("`{}`: {}", place(s.area, &change.at), change.what),
            why: s.why(change.direction),
            basis: Basis::Structural,
            witness,
            bump: bump(class),
            removed_error: None,
        });
    }
    if comparison.undecided.is_empty() {
        return;
    }
    let places: Vec<String> = comparison
        .undecided
        .iter()
        .map(|(at, keyword)| format!("`{keyword}` at `{}`", place(s.area, at)))
        .collect();
    let what = format!("{} changed", places.join(", "));
    let unexplained = |pool: &[(&Value, Vec<String>)], explained: &[bool]| {
        pool.iter()
            .zip(explained)
            .find(|(_, e)| !**e)
            .map(|((v, _), _)| (*v).clone())
    };
    let mut found = false;
    for (direction, witness) in [
        (Direction::Narrower, unexplained(&narrow, &explained_narrow)),
        (Direction::Wider, unexplained(&wide, &explained_wide)),
    ] {
        if let Some(witness) = witness {
            found = true;
            let class = s.class(direction);
            out.push(Change {
                class,
                area: s.area,
                what: what.clone(),
                why: s.why(direction),
                basis: Basis::Sampled { samples },
                witness: Some(witness),
                bump: bump(class),
                removed_error: None,
            });
        }
    }
    if !found {
        out.push(Change {
            class: Class::Compatible,
            area: s.area,
            what,
            why: format!("no value found that one side accepts and the other refuses, in {samples} samples of each"),
            basis: Basis::Sampled { samples },
            witness: None,
            bump: Bump::Patch,
            removed_error: None,
        });
    }
}

fn sources(exprs: &[mote_contract::Expr]) -> Vec<&str> {
    exprs.iter().map(|e| e.source().trim()).collect()
}

fn requires(old: &Contract, new: &Contract, sides: &Sides, samples: usize, out: &mut Vec<Change>) {
    if sources(&old.behavior.requires) == sources(&new.behavior.requires) {
        return;
    }
    let valid_in_both = sides
        .old_inputs
        .iter()
        .chain(&sides.new_inputs)
        .filter(|x| old.input.is_valid(x) && new.input.is_valid(x));
    let (mut stronger, mut weaker) = (None, None);
    for x in valid_in_both {
        let bindings = Bindings::new().with("input", x);
        match (old.unmet_requires(&bindings), new.unmet_requires(&bindings)) {
            (None, Some(unmet)) if stronger.is_none() => {
                stronger = Some((x.clone(), unmet.requires.source().trim().to_string()));
            }
            (Some(_), None) if weaker.is_none() => weaker = Some(x.clone()),
            _ => {}
        }
    }
    let basis = Basis::Sampled { samples };
    if let Some((witness, by)) = stronger {
        out.push(Change {
            class: Class::Breaking,
            area: Area::Requires,
            what: format!(
                "`requires` is stronger: `{by}` refuses an input the old contract admitted"
            ),
            why: "an input the old contract accepted is refused by the new one".into(),
            basis,
            witness: Some(witness),
            bump: Bump::Major,
            removed_error: None,
        });
    }
    if let Some(witness) = weaker.clone() {
        out.push(Change {
            class: Class::Compatible,
            area: Area::Requires,
            what: "`requires` is weaker: it admits an input the old contract refused".into(),
            why: "an input the old contract refused is accepted by the new one".into(),
            basis,
            witness: Some(witness),
            bump: Bump::Minor,
            removed_error: None,
        });
    }
    if out.iter().all(|c| c.area != Area::Requires) {
        out.push(Change {
            class: Class::Compatible,
            area: Area::Requires,
            what: "`requires` rewritten".into(),
            why: format!("it admits the same inputs in {samples} samples of each side"),
            basis,
            witness: None,
            bump: Bump::Patch,
            removed_error: None,
        });
    }
}

/// Whether every `ensures` of `contract` holds for `input` → `output`.
fn ensures_hold(contract: &Contract, input: &Value, output: &Value) -> bool {
    let bindings = Bindings::new().with("input", input).with("output", output);
    contract
        .behavior
        .ensures
        .iter()
        .all(|e| e.eval_bool(&bindings).unwrap_or(false))
}

/// Whether `contract` makes `input` succeed (no error due).
fn succeeds(contract: &Contract, input: &Value) -> bool {
    matches!(
        contract.due_error(&Bindings::new().with("input", input)),
        Ok(None)
    )
}

fn ensures(
    old: &Contract,
    new: &Contract,
    sides: &Sides,
    options: &Options,
    out: &mut Vec<Change>,
) {
    if sources(&old.behavior.ensures) == sources(&new.behavior.ensures) {
        return;
    }
    let doubles = Doubles::new(options.seed);
    let (mut weaker, mut stronger) = (None, None);
    let inputs = sides
        .common_inputs(old, new)
        .filter(|x| succeeds(old, x) && succeeds(new, x));
    for x in inputs.take(options.samples) {
        if weaker.is_none()
            && let DoubleAnswer::Output(y) = doubles.answer(new, x)
            && old.output.is_valid(&y)
            && !ensures_hold(old, x, &y)
        {
            weaker = Some(json!({"input": x, "output": y}));
        }
        if stronger.is_none()
            && let DoubleAnswer::Output(y) = doubles.answer(old, x)
            && new.output.is_valid(&y)
            && !ensures_hold(new, x, &y)
        {
            stronger = Some(json!({"input": x, "output": y}));
        }
        if weaker.is_some() && stronger.is_some() {
            break;
        }
    }
    let basis = Basis::Sampled {
        samples: options.samples,
    };
    let found = weaker.is_some() || stronger.is_some();
    if let Some(witness) = weaker {
        out.push(Change {
            class: Class::Breaking,
            area: Area::Ensures,
            what: "`ensures` is weaker: it allows an answer the old contract ruled out".into(),
            why: "callers may rely on what the old `ensures` promised".into(),
            basis,
            witness: Some(witness),
            bump: Bump::Major,
            removed_error: None,
        });
    }
    if let Some(witness) = stronger {
        out.push(Change {
            class: Class::Compatible,
            area: Area::Ensures,
            what: "`ensures` is stronger: it rules out an answer the old contract allowed".into(),
            why: "every answer the new contract allows, the old one allowed".into(),
            basis,
            witness: Some(witness),
            bump: Bump::Minor,
            removed_error: None,
        });
    }
    if !found {
        out.push(Change {
            class: Class::Compatible,
            area: Area::Ensures,
            what: "`ensures` rewritten".into(),
            why: format!(
                "no answer found that one side allows and the other rules out, in {} samples",
                options.samples
            ),
            basis,
            witness: None,
            bump: Bump::Patch,
            removed_error: None,
        });
    }
}

/// The outcome a contract makes due on an input: an error code, or
/// `None` for success; `Err` when a `when` cannot be evaluated.
fn outcome(contract: &Contract, input: &Value) -> Result<Option<String>, ()> {
    contract
        .due_error(&Bindings::new().with("input", input))
        .map(|due| due.map(|e| e.code.clone()))
        .map_err(|_| ())
}

fn errors(old: &Contract, new: &Contract, sides: &Sides, samples: usize, out: &mut Vec<Change>) {
    let structural = |class, what: String, why: &str, bump| Change {
        class,
        area: Area::Errors,
        what,
        why: why.to_string(),
        basis: Basis::Structural,
        witness: None,
        bump,
        removed_error: None,
    };
    for error in &old.errors {
        match new.errors.iter().find(|e| e.code == error.code) {
            Some(now) if now.status != error.status => out.push(structural(
                Class::Breaking,
                format!("`{}` travels with status {} instead of {}", error.code, now.status, error.status),
                "callers that read the status see another one",
                Bump::Major,
            )),
            Some(_) => {}
            None => out.push(Change {
                removed_error: Some(error.code.clone()),
                ..structural(
                    Class::Compatible,
                    format!("`{}` removed", error.code),
                    "callers never receive it again; a flow that maps it in `on_error` keeps a mapping that cannot fire",
                    Bump::Minor,
                )
            }),
        }
    }
    for error in &new.errors {
        if error.when.is_none() && !old.errors.iter().any(|e| e.code == error.code) {
            out.push(structural(
                Class::Breaking,
                format!(
                    "`{}` added, with no `when`: it may be returned on any input",
                    error.code
                ),
                "callers that never saw it must now handle it",
                Bump::Major,
            ));
        }
    }
    let partition = |c: &Contract| -> Vec<(String, Option<String>)> {
        c.errors
            .iter()
            .map(|e| {
                (
                    e.code.clone(),
                    e.when.as_ref().map(|w| w.source().trim().to_string()),
                )
            })
            .collect()
    };
    if partition(old) == partition(new) {
        return;
    }
    let mut seen: Vec<(Option<String>, Option<String>)> = Vec::new();
    for x in sides.common_inputs(old, new) {
        let (Ok(before), Ok(after)) = (outcome(old, x), outcome(new, x)) else {
            continue;
        };
        if before == after || seen.contains(&(before.clone(), after.clone())) {
            continue;
        }
        seen.push((before.clone(), after.clone()));
        let (class, what, why, bump) = match (&before, &after) {
            (None, Some(code)) => (
                Class::Breaking,
                format!("`{code}` is due on an input that used to succeed"),
                "callers that got an answer get an error".to_string(),
                Bump::Major,
            ),
            (Some(was), Some(code)) => (
                Class::Breaking,
                format!("`{code}` is due where `{was}` was"),
                "callers that handle one code get another".to_string(),
                Bump::Major,
            ),
            (Some(was), None) => (
                Class::Compatible,
                format!("`{was}` is no longer due on an input that used to fail"),
                "callers that handled the error now get an answer the output schema describes"
                    .to_string(),
                Bump::Minor,
            ),
            (None, None) => continue,
        };
        out.push(Change {
            class,
            area: Area::Errors,
            what,
            why,
            basis: Basis::Sampled { samples },
            witness: Some(x.clone()),
            bump,
            removed_error: None,
        });
    }
    if seen.is_empty() {
        out.push(Change {
            class: Class::Compatible,
            area: Area::Errors,
            what: "errors' `when` or order rewritten".into(),
            why: format!("every input sampled ({samples} of each side) has the same outcome"),
            basis: Basis::Sampled { samples },
            witness: None,
            bump: Bump::Patch,
            removed_error: None,
        });
    }
}

fn effects(old: &Contract, new: &Contract, out: &mut Vec<Change>) {
    let mut push = |class: Class, what: String, why: &str| {
        out.push(Change {
            class,
            area: Area::Effects,
            what,
            why: why.to_string(),
            basis: Basis::Structural,
            witness: None,
            bump: Bump::Minor,
            removed_error: None,
        });
    };
    for (name, was, is) in [
        ("clock", old.effects.clock, new.effects.clock),
        ("random", old.effects.random, new.effects.random),
    ] {
        if !was && is {
            push(
                Class::Review,
                format!("may now read the real {name}"),
                "a new effect: answers may vary with it",
            );
        } else if was && !is {
            push(
                Class::Compatible,
                format!("no longer reads the {name}"),
                "one effect fewer",
            );
        }
    }
    for call in &new.effects.calls {
        match old.effects.calls.iter().find(|c| c.service == call.service) {
            None => push(
                Class::Review,
                format!("may now call `{call}`"),
                "a new effect: a new dependency",
            ),
            Some(was) if was.versions != call.versions => push(
                Class::Review,
                format!(
                    "calls `{}` at `{}` instead of `{}`",
                    call.service, call.versions, was.versions
                ),
                "another version of a dependency",
            ),
            Some(_) => {}
        }
    }
    for call in &old.effects.calls {
        if !new.effects.calls.iter().any(|c| c.service == call.service) {
            push(
                Class::Compatible,
                format!("no longer calls `{}`", call.service),
                "one dependency fewer",
            );
        }
    }
    for store in &new.stores {
        match old.stores.iter().find(|s| s.name == store.name) {
            None => push(
                Class::Review,
                format!(
                    "keeps state in store `{}` ({})",
                    store.name,
                    store.access.as_str()
                ),
                "a new effect: answers may depend on state",
            ),
            Some(was) if was.access != store.access => push(
                Class::Review,
                format!(
                    "store `{}` is {} instead of {}",
                    store.name,
                    store.access.as_str(),
                    was.access.as_str()
                ),
                "another access to shared state",
            ),
            Some(was)
                if was.key.json() != store.key.json() || was.value.json() != store.value.json() =>
            {
                push(
                    Class::Review,
                    format!("store `{}` has other key or value schemas", store.name),
                    "every service sharing the store must change with it",
                );
            }
            Some(_) => {}
        }
    }
    for store in &old.stores {
        if !new.stores.iter().any(|s| s.name == store.name) {
            push(
                Class::Compatible,
                format!("no longer uses store `{}`", store.name),
                "one effect fewer",
            );
        }
    }
}

fn limits(old: &Contract, new: &Contract, out: &mut Vec<Change>) {
    let (o, n) = (old.limits, new.limits);
    let shown = |v: Option<u64>| v.map_or("the host's default".to_string(), |v| v.to_string());
    let mut push = |class: Class, what: String, why: String| {
        out.push(Change {
            class,
            area: Area::Limits,
            what,
            why,
            basis: Basis::Structural,
            witness: None,
            bump: bump(class),
            removed_error: None,
        });
    };
    for (name, was, is, relied) in [
        (
            "timeout_ms",
            o.timeout_ms,
            n.timeout_ms,
            "callers that wait for an answer in between get a timeout",
        ),
        (
            "max_input_bytes",
            o.max_input_bytes,
            n.max_input_bytes,
            "inputs in between are refused",
        ),
    ] {
        match (was, is) {
            (Some(w), Some(i)) if i < w => push(
                Class::Breaking,
                format!("{name} {w} → {i}"),
                relied.to_string(),
            ),
            (Some(w), Some(i)) if i > w => {
                push(
                    Class::Compatible,
                    format!("{name} {w} → {i}"),
                    "a higher limit".to_string(),
                );
            }
            (w, i) if w != i => push(
                Class::Review,
                format!("{name} {} → {}", shown(w), shown(i)),
                "the host's default decides; check it against the old value".to_string(),
            ),
            _ => {}
        }
    }
    for (name, was, is) in [
        ("memory_mib", o.memory_mib, n.memory_mib),
        ("fuel", o.fuel, n.fuel),
    ] {
        if was != is {
            push(
                Class::Review,
                format!("{name} {} → {}", shown(was), shown(is)),
                "a lower budget may fail inputs that used to pass; verify the new one".to_string(),
            );
        }
    }
}
