//! The subscription's status machine, as a pure function: given the subscription, its
//! plans, its open invoice (if any), the instant "now" and the grace period, the one
//! transition due ([`next`]), or none. The renewal job (`service::renew`) applies
//! transitions until none is due, so a run as of any instant (`rowguard jobs run
//! billing.renewals --at T`) catches up on everything due by then, and a second run
//! as of the same instant finds nothing to do.
//!
//! The statuses:
//! - `trialing`: on a plan's trial; the trial is the current period, its end the
//!   first renewal (the first invoice).
//! - `active`: the current period is paid (or free, or a trial just ended and its
//!   invoice is not yet past due).
//! - `past_due`: the renewal invoice is open past its due time (the start of the
//!   period it pays for); everything still works for the grace period.
//! - `unpaid`: the grace period is over (the feature gate answers 402).
//! - `canceled`: the subscription is over for good and nothing renews it: the state of
//!   a deleted tenant's subscription, until its rows are erased. A tenant that cancels
//!   (`DELETE /subscriptions/current`) is not `canceled`: at the end of its period it
//!   moves to `free`, active, and keeps using the product. Nothing in this machine
//!   enters `canceled`; it only leaves it alone.
//!
//! The rules at the end of the current period (`now >= period_end`):
//! 1. A move to a free plan (cancel at period end, or a pending downgrade to free)
//!    happens whatever is open: there is nothing to pay on free, so an open invoice is
//!    voided.
//! 2. An open renewal invoice: nothing new is issued (it is past due, see below).
//! 3. On a free plan: the next period starts, nothing to pay.
//! 4. Otherwise the next period's renewal invoice is issued, for the plan the tenant
//!    is on then (a pending downgrade applies now), due at once; a trial is over. An
//!    upgrade still unpaid (its `plan_change` invoice open) is dropped: its invoice
//!    is voided and the renewal takes its place (one open invoice at a time).
//!
//! The period itself advances when an invoice is paid (`service::apply_payment`), to
//! the period the invoice was for: a late payment keeps the anchor day.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::period::{Interval, next_period_end};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Trialing,
    Active,
    PastDue,
    Unpaid,
    Canceled,
}

impl Status {
    pub fn parse(text: &str) -> Option<Status> {
        Some(match text {
            "trialing" => Status::Trialing,
            "active" => Status::Active,
            "past_due" => Status::PastDue,
            "unpaid" => Status::Unpaid,
            "canceled" => Status::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Trialing => "trialing",
            Status::Active => "active",
            Status::PastDue => "past_due",
            Status::Unpaid => "unpaid",
            Status::Canceled => "canceled",
        }
    }
}

/// What a plan charges, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub code: String,
    pub name: String,
    pub price_minor: i64,
    pub currency: String,
    pub interval: Interval,
    pub trial_days: i32,
}

impl Terms {
    pub fn is_free(&self) -> bool {
        self.price_minor == 0
    }

    /// The price over a year, to compare plans billed at different intervals.
    pub fn yearly_price(&self) -> i64 {
        self.price_minor.saturating_mul(self.interval.per_year())
    }
}

/// Why an invoice was issued (`invoices.purpose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The next period of the plan the tenant is on.
    Renewal,
    /// The first period of the plan the tenant asked to move to.
    PlanChange,
}

impl Purpose {
    pub fn parse(text: &str) -> Option<Purpose> {
        match text {
            "renewal" => Some(Purpose::Renewal),
            "plan_change" => Some(Purpose::PlanChange),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Renewal => "renewal",
            Purpose::PlanChange => "plan_change",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInvoice {
    pub id: Uuid,
    pub purpose: Purpose,
    pub due_at: DateTime<Utc>,
}

/// The subscription as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub plan: Terms,
    /// The plan it moves to: an upgrade awaiting its invoice's payment, or a
    /// downgrade at period end (told apart by the open `plan_change` invoice).
    pub pending: Option<Terms>,
    pub cancel_at_period_end: bool,
    pub anchor: DateTime<Utc>,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub open_invoice: Option<OpenInvoice>,
}

/// A period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// An invoice to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    pub purpose: Purpose,
    pub plan: Terms,
    pub period: Period,
    pub due_at: DateTime<Utc>,
}

/// One step of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The period ended and the tenant moves to `plan` (free): active from the old
    /// period's end, with nothing pending; `void` is the open invoice dropped.
    MoveToFree {
        plan: Terms,
        anchor: DateTime<Utc>,
        period: Period,
        void: Option<Uuid>,
    },
    /// A free period ended: the next one starts.
    AdvanceFree { period: Period },
    /// A paid period (or a trial) ended: the next one's invoice, on `invoice.plan`
    /// (a pending downgrade applied), status active (a trial is over, a paid period
    /// was paid); `void` is an unpaid upgrade's invoice dropped.
    Renew {
        invoice: NewInvoice,
        anchor: DateTime<Utc>,
        void: Option<Uuid>,
    },
    /// The renewal invoice is open past its due time.
    PastDue { invoice: Uuid },
    /// ... and past the grace period.
    Unpaid { invoice: Uuid },
}

/// The transition due as of `now`, if any. `free` is the plan a canceled subscription
/// moves to. `None` also when a period end would lie beyond what a timestamp holds.
pub fn next(
    state: &State,
    free: &Terms,
    now: DateTime<Utc>,
    grace: TimeDelta,
) -> Option<Transition> {
    if state.status == Status::Canceled {
        return None;
    }
    let renewal = state
        .open_invoice
        .as_ref()
        .filter(|invoice| invoice.purpose == Purpose::Renewal);
    let upgrade = state
        .open_invoice
        .as_ref()
        .filter(|invoice| invoice.purpose == Purpose::PlanChange);
    if now >= state.period_end {
        let downgrade = state.pending.as_ref().filter(|_| upgrade.is_none());
        let to_free = if state.cancel_at_period_end {
            Some(free)
        } else {
            downgrade.filter(|plan| plan.is_free())
        };
        if let Some(plan) = to_free {
            let anchor = reanchored(state, plan);
            return Some(Transition::MoveToFree {
                plan: plan.clone(),
                anchor,
                period: next_period(anchor, plan.interval, state.period_end)?,
                void: state.open_invoice.as_ref().map(|invoice| invoice.id),
            });
        }
        if renewal.is_none() {
            if state.plan.is_free() && downgrade.is_none() {
                return Some(Transition::AdvanceFree {
                    period: next_period(state.anchor, state.plan.interval, state.period_end)?,
                });
            }
            let plan = downgrade.unwrap_or(&state.plan);
            let anchor = reanchored(state, plan);
            return Some(Transition::Renew {
                invoice: NewInvoice {
                    purpose: Purpose::Renewal,
                    plan: plan.clone(),
                    period: next_period(anchor, plan.interval, state.period_end)?,
                    due_at: state.period_end,
                },
                anchor,
                void: upgrade.map(|invoice| invoice.id),
            });
        }
    }
    let invoice = renewal?;
    match state.status {
        Status::Trialing | Status::Active if now > invoice.due_at => Some(Transition::PastDue {
            invoice: invoice.id,
        }),
        Status::PastDue if now >= invoice.due_at + grace => Some(Transition::Unpaid {
            invoice: invoice.id,
        }),
        _ => None,
    }
}

/// The anchor of the periods on `plan` after the current one: the same, unless the
/// interval changes (a yearly grid from a monthly anchor would make a short first
/// year), then the end of the current period.
fn reanchored(state: &State, plan: &Terms) -> DateTime<Utc> {
    if plan.interval == state.plan.interval {
        state.anchor
    } else {
        state.period_end
    }
}

fn next_period(anchor: DateTime<Utc>, interval: Interval, start: DateTime<Utc>) -> Option<Period> {
    Some(Period {
        start,
        end: next_period_end(anchor, interval, start)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn plan(code: &str, price_minor: i64) -> Terms {
        Terms {
            code: code.into(),
            name: code.into(),
            price_minor,
            currency: "KES".into(),
            interval: Interval::Month,
            trial_days: if price_minor > 0 { 14 } else { 0 },
        }
    }

    fn free() -> Terms {
        plan("free", 0)
    }

    const GRACE: TimeDelta = TimeDelta::days(7);

    /// Active on starter, anchored Jan 31, in its Feb 28 - Mar 31 period.
    fn starter() -> State {
        State {
            status: Status::Active,
            plan: plan("starter", 250_000),
            pending: None,
            cancel_at_period_end: false,
            anchor: at("2027-01-31T00:00:00Z"),
            period_start: at("2027-02-28T00:00:00Z"),
            period_end: at("2027-03-31T00:00:00Z"),
            open_invoice: None,
        }
    }

    fn open(purpose: Purpose, due_at: &str) -> Option<OpenInvoice> {
        Some(OpenInvoice {
            id: Uuid::from_u128(7),
            purpose,
            due_at: at(due_at),
        })
    }

    #[test]
    fn nothing_happens_inside_a_paid_period() {
        assert_eq!(
            next(&starter(), &free(), at("2027-03-30T23:59:59Z"), GRACE),
            None
        );
    }

    #[test]
    fn the_end_of_a_paid_period_issues_the_next_periods_invoice_due_at_once() {
        let due = next(&starter(), &free(), at("2027-03-31T00:00:00Z"), GRACE);
        assert_eq!(
            due,
            Some(Transition::Renew {
                invoice: NewInvoice {
                    purpose: Purpose::Renewal,
                    plan: plan("starter", 250_000),
                    period: Period {
                        start: at("2027-03-31T00:00:00Z"),
                        end: at("2027-04-30T00:00:00Z"),
                    },
                    due_at: at("2027-03-31T00:00:00Z"),
                },
                anchor: at("2027-01-31T00:00:00Z"),
                void: None,
            })
        );
    }

    #[test]
    fn the_end_of_a_trial_issues_the_first_invoice() {
        let trial = State {
            status: Status::Trialing,
            anchor: at("2027-03-31T00:00:00Z"),
            period_start: at("2027-03-17T00:00:00Z"),
            period_end: at("2027-03-31T00:00:00Z"),
            ..starter()
        };
        let Some(Transition::Renew { invoice, .. }) =
            next(&trial, &free(), at("2027-03-31T00:00:00Z"), GRACE)
        else {
            panic!("no invoice at the end of the trial");
        };
        assert_eq!(invoice.period.start, at("2027-03-31T00:00:00Z"));
        assert_eq!(invoice.period.end, at("2027-04-30T00:00:00Z"));
        assert_eq!(
            next(&trial, &free(), at("2027-03-30T00:00:00Z"), GRACE),
            None
        );
    }

    #[test]
    fn an_open_renewal_invoice_is_past_due_after_its_due_time_then_unpaid_after_the_grace() {
        let waiting = State {
            open_invoice: open(Purpose::Renewal, "2027-03-31T00:00:00Z"),
            ..starter()
        };
        // At its due time: not yet past it, and no second invoice.
        assert_eq!(
            next(&waiting, &free(), at("2027-03-31T00:00:00Z"), GRACE),
            None
        );
        let past_due = next(&waiting, &free(), at("2027-03-31T00:00:01Z"), GRACE);
        assert_eq!(
            past_due,
            Some(Transition::PastDue {
                invoice: Uuid::from_u128(7)
            })
        );
        let past_due_state = State {
            status: Status::PastDue,
            ..waiting
        };
        assert_eq!(
            next(&past_due_state, &free(), at("2027-04-06T23:59:59Z"), GRACE),
            None,
            "inside the grace period"
        );
        assert_eq!(
            next(&past_due_state, &free(), at("2027-04-07T00:00:00Z"), GRACE),
            Some(Transition::Unpaid {
                invoice: Uuid::from_u128(7)
            })
        );
        let unpaid = State {
            status: Status::Unpaid,
            ..past_due_state
        };
        assert_eq!(
            next(&unpaid, &free(), at("2027-06-01T00:00:00Z"), GRACE),
            None
        );
    }

    #[test]
    fn the_grace_period_is_a_parameter() {
        let past_due = State {
            status: Status::PastDue,
            open_invoice: open(Purpose::Renewal, "2027-03-31T00:00:00Z"),
            ..starter()
        };
        let now = at("2027-04-02T00:00:00Z");
        assert_eq!(next(&past_due, &free(), now, GRACE), None);
        assert!(matches!(
            next(&past_due, &free(), now, TimeDelta::days(1)),
            Some(Transition::Unpaid { .. })
        ));
    }

    #[test]
    fn cancel_at_period_end_moves_to_free_at_the_period_end_keeping_the_anchor() {
        let canceling = State {
            cancel_at_period_end: true,
            ..starter()
        };
        assert_eq!(
            next(&canceling, &free(), at("2027-03-30T00:00:00Z"), GRACE),
            None
        );
        assert_eq!(
            next(&canceling, &free(), at("2027-03-31T05:00:00Z"), GRACE),
            Some(Transition::MoveToFree {
                plan: free(),
                anchor: at("2027-01-31T00:00:00Z"),
                period: Period {
                    start: at("2027-03-31T00:00:00Z"),
                    end: at("2027-04-30T00:00:00Z"),
                },
                void: None,
            })
        );
    }

    #[test]
    fn a_move_to_free_voids_the_invoice_left_open() {
        let unpaid_then_canceled = State {
            status: Status::Unpaid,
            cancel_at_period_end: true,
            open_invoice: open(Purpose::Renewal, "2027-03-31T00:00:00Z"),
            ..starter()
        };
        let Some(Transition::MoveToFree { void, .. }) = next(
            &unpaid_then_canceled,
            &free(),
            at("2027-04-20T00:00:00Z"),
            GRACE,
        ) else {
            panic!("not moved to free");
        };
        assert_eq!(void, Some(Uuid::from_u128(7)));
    }

    #[test]
    fn a_pending_downgrade_to_free_moves_to_free_at_period_end() {
        let downgrading = State {
            pending: Some(free()),
            ..starter()
        };
        assert!(matches!(
            next(&downgrading, &free(), at("2027-03-31T00:00:00Z"), GRACE),
            Some(Transition::MoveToFree { .. })
        ));
    }

    #[test]
    fn a_pending_downgrade_to_a_paid_plan_is_invoiced_at_period_end() {
        let downgrading = State {
            plan: plan("business", 1_000_000),
            pending: Some(plan("starter", 250_000)),
            ..starter()
        };
        let Some(Transition::Renew { invoice, void, .. }) =
            next(&downgrading, &free(), at("2027-03-31T00:00:00Z"), GRACE)
        else {
            panic!("no renewal");
        };
        assert_eq!(invoice.plan.code, "starter");
        assert_eq!(invoice.plan.price_minor, 250_000);
        assert_eq!(void, None);
    }

    #[test]
    fn an_upgrade_unpaid_at_the_end_of_a_paid_period_is_dropped_for_the_renewal() {
        let upgrading = State {
            pending: Some(plan("business", 1_000_000)),
            open_invoice: open(Purpose::PlanChange, "2027-03-20T00:00:00Z"),
            ..starter()
        };
        // Before the period ends, an unpaid upgrade is no debt: no past_due.
        assert_eq!(
            next(&upgrading, &free(), at("2027-03-25T00:00:00Z"), GRACE),
            None
        );
        let Some(Transition::Renew { invoice, void, .. }) =
            next(&upgrading, &free(), at("2027-03-31T00:00:00Z"), GRACE)
        else {
            panic!("no renewal");
        };
        assert_eq!(invoice.plan.code, "starter", "the plan the tenant is on");
        assert_eq!(void, Some(Uuid::from_u128(7)));
    }

    #[test]
    fn a_free_period_advances_without_an_invoice_and_an_upgrade_waits_across_it() {
        let on_free = State {
            plan: free(),
            pending: Some(plan("starter", 250_000)),
            open_invoice: open(Purpose::PlanChange, "2027-03-20T00:00:00Z"),
            ..starter()
        };
        assert_eq!(
            next(&on_free, &free(), at("2027-04-01T00:00:00Z"), GRACE),
            Some(Transition::AdvanceFree {
                period: Period {
                    start: at("2027-03-31T00:00:00Z"),
                    end: at("2027-04-30T00:00:00Z"),
                },
            })
        );
    }

    #[test]
    fn a_canceled_subscription_never_moves() {
        let canceled = State {
            status: Status::Canceled,
            cancel_at_period_end: true,
            open_invoice: open(Purpose::Renewal, "2027-03-31T00:00:00Z"),
            ..starter()
        };
        assert_eq!(
            next(&canceled, &free(), at("2030-01-01T00:00:00Z"), GRACE),
            None
        );
    }

    #[test]
    fn a_change_of_interval_starts_a_new_grid_at_the_period_end() {
        let yearly = Terms {
            interval: Interval::Year,
            ..plan("starter_yearly", 2_500_000)
        };
        let downgrading = State {
            plan: plan("business", 1_000_000),
            pending: Some(yearly),
            ..starter()
        };
        let Some(Transition::Renew {
            invoice, anchor, ..
        }) = next(&downgrading, &free(), at("2027-03-31T00:00:00Z"), GRACE)
        else {
            panic!("no renewal");
        };
        assert_eq!(anchor, at("2027-03-31T00:00:00Z"));
        assert_eq!(invoice.period.end, at("2028-03-31T00:00:00Z"));
    }
}
