//! The CEL environment rules compile against and the per-customer context they run in
//! (variable table in the [module docs](super)).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Context, Env, Value};

use crate::activity::CustomerActivity;

/// Every variable a rule can read, sorted. Their CEL types and meanings are tabled in the
/// documentation of the `rules` module (`src/rules/mod.rs`).
pub const RULE_VARIABLES: &[&str] = &[
    "activity_index",
    "aov",
    "as_of_ms",
    "categories",
    "expected_purchases",
    "first_seen_ms",
    "has_lifetime",
    "has_rfm",
    "l30",
    "l7",
    "l90",
    "last_seen_ms",
    "level",
    "lifecycle",
    "p_alive",
    "purchases",
    "recency_days",
    "revenue",
    "rfm_f",
    "rfm_m",
    "rfm_r",
    "rfm_segment",
    "segment",
    "trend",
    "weekday_pattern",
];

/// Function namespaces of the standard environment, whose functions are called as
/// `namespace.function(..)` (the target parses as an identifier, not a variable).
const FUNCTION_NAMESPACES: &[&str] = &["optional"];

/// The standard CEL environment (functions, macros, types), built once per process and shared
/// by every compiled rule and every context.
pub(super) static STDLIB: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The CEL context of one customer: every variable of [`RULE_VARIABLES`] bound once, then
/// shared by all the rules evaluated for that customer.
pub(super) fn activity_context(activity: &CustomerActivity) -> Context<'static, 'static> {
    let mut context = Context::with_env(Arc::clone(&STDLIB));
    let mut set = |name: &str, value: Value| context.add_variable_from_value(name, value);

    set("activity_index", Value::Float(activity.activity_index));
    set("level", activity.level.name().into());
    set("trend", Value::Float(activity.trend));
    set("segment", activity.segment.name().into());
    set("lifecycle", activity.lifecycle.name().into());
    set("weekday_pattern", activity.weekday_pattern.name().into());
    set("l7", Value::Int(i64::from(activity.active_days_7)));
    set("l30", Value::Int(i64::from(activity.active_days_30)));
    set("l90", Value::Int(i64::from(activity.active_days_90)));
    set("recency_days", Value::Float(activity.recency_days));
    set("purchases", Value::Int(saturating_int(activity.purchase_count)));
    set("revenue", Value::Float(activity.total_amount));
    set("aov", Value::Float(activity.average_order_value));
    set("first_seen_ms", Value::Int(activity.first_seen_ms));
    set("last_seen_ms", Value::Int(activity.last_seen_ms));
    set("as_of_ms", Value::Int(activity.as_of_ms));

    let lifetime = activity.lifetime.as_ref();
    set("has_lifetime", Value::Bool(lifetime.is_some()));
    set("p_alive", lifetime.map_or(Value::Null, |l| Value::Float(l.p_alive)));
    set("expected_purchases", lifetime.map_or(Value::Null, |l| Value::Float(l.expected_purchases)));

    let rfm = activity.rfm.as_ref();
    set("has_rfm", Value::Bool(rfm.is_some()));
    set("rfm_segment", rfm.map_or("", |s| s.segment.name()).into());
    set("rfm_r", Value::Int(rfm.map_or(0, |s| i64::from(s.r))));
    set("rfm_f", Value::Int(rfm.map_or(0, |s| i64::from(s.f))));
    set("rfm_m", Value::Int(rfm.map_or(0, |s| i64::from(s.m))));

    let mut categories = HashMap::with_capacity(activity.categories.len());
    for category in &activity.categories {
        let fields = HashMap::from([
            ("index", Value::Float(category.activity_index)),
            ("affinity", Value::Float(category.affinity)),
            ("trend", Value::Float(category.trend)),
            ("last_seen_ms", Value::Int(category.last_seen_ms)),
        ]);
        categories.insert(category.category.clone(), Value::from(fields));
    }
    set("categories", Value::from(categories));
    context
}

fn saturating_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The first identifier of `expression` that is neither a rule variable, a variable bound by a
/// macro (`categories.exists(c, ...)`), a type name (`double`, `int`, ...) nor a function
/// namespace; `None` when every identifier is known.
pub(super) fn first_unknown_variable(expression: &IdedExpr) -> Option<String> {
    let mut bound = Vec::new();
    find_unknown(expression, &mut bound)
}

/// Depth-first walk keeping the comprehension variables in scope in `bound`. The parser limits
/// nesting depth, so the recursion is bounded.
fn find_unknown(expression: &IdedExpr, bound: &mut Vec<String>) -> Option<String> {
    match &expression.expr {
        Expr::Unspecified | Expr::Literal(_) => None,
        Expr::Ident(name) => {
            let known = name.starts_with('@') // accumulators of expanded macros
                || RULE_VARIABLES.binary_search(&name.as_str()).is_ok()
                || bound.iter().any(|b| b == name)
                || STDLIB.types().find_type(name).is_some();
            (!known).then(|| name.clone())
        }
        Expr::Call(call) => {
            let target = call.target.as_deref().filter(|target| !is_namespace(target));
            target.into_iter().chain(&call.args).find_map(|e| find_unknown(e, bound))
        }
        Expr::Select(select) => find_unknown(&select.operand, bound),
        Expr::List(list) => list.elements.iter().find_map(|e| find_unknown(e, bound)),
        Expr::Map(map) => map.entries.iter().find_map(|entry| find_unknown_in_entry(&entry.expr, bound)),
        Expr::Struct(structure) => {
            structure.entries.iter().find_map(|entry| find_unknown_in_entry(&entry.expr, bound))
        }
        Expr::Comprehension(comprehension) => {
            // The range and the initial accumulator are outside the loop's scope.
            if let Some(name) = find_unknown(&comprehension.iter_range, bound)
                .or_else(|| find_unknown(&comprehension.accu_init, bound))
            {
                return Some(name);
            }
            let scope = bound.len();
            bound.push(comprehension.iter_var.clone());
            bound.extend(comprehension.iter_var2.clone());
            bound.push(comprehension.accu_var.clone());
            let unknown = [&comprehension.loop_cond, &comprehension.loop_step, &comprehension.result]
                .into_iter()
                .find_map(|e| find_unknown(e, bound));
            bound.truncate(scope);
            unknown
        }
    }
}

fn find_unknown_in_entry(entry: &EntryExpr, bound: &mut Vec<String>) -> Option<String> {
    match entry {
        EntryExpr::StructField(field) => find_unknown(&field.value, bound),
        EntryExpr::MapEntry(entry) => {
            find_unknown(&entry.key, bound).or_else(|| find_unknown(&entry.value, bound))
        }
    }
}

/// Whether a call target is a function namespace (`optional` in `optional.of(x)`).
fn is_namespace(target: &IdedExpr) -> bool {
    matches!(&target.expr, Expr::Ident(name) if FUNCTION_NAMESPACES.contains(&name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_sorted_and_unique() {
        assert!(RULE_VARIABLES.windows(2).all(|w| w[0] < w[1]), "binary search needs sorted names");
    }

    fn unknown_in(source: &str) -> Option<String> {
        let program = STDLIB.compile(source).unwrap();
        first_unknown_variable(program.expression())
    }

    #[test]
    fn finds_unknown_identifiers_only() {
        assert_eq!(unknown_in("activity_index > 1 && level == 'HIGH'"), None);
        assert_eq!(unknown_in("categories.exists(c, categories[c].affinity > 0.5)"), None);
        assert_eq!(unknown_in("categories.filter(k, k.startsWith('b')).exists_one(k, k == 'x')"), None);
        assert_eq!(unknown_in("[1, 2].map(x, x * l7).size() > 0 && has(categories.beauty)"), None);
        assert_eq!(unknown_in("type(trend) == double && optional.of(l30).hasValue()"), None);
        assert_eq!(unknown_in("{'a': purchases}.a > 1"), None);
        assert_eq!(unknown_in("activty_index > 1").as_deref(), Some("activty_index"));
        assert_eq!(unknown_in("categories.exists(c, c == foo)").as_deref(), Some("foo"));
        assert_eq!(unknown_in("[c].exists(c, true)").as_deref(), Some("c"), "c is not bound in the range");
        assert_eq!(unknown_in("{'k': bar}.k").as_deref(), Some("bar"));
        assert_eq!(unknown_in("foo.bar > 1").as_deref(), Some("foo"));
    }
}
