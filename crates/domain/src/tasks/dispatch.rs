//! Fair automatic dispatch: a new task goes to the worker of its grid with the
//! least open workload, weighted by priority, so the work spreads over
//! whoever can take it. When every worker is at or above the overload
//! threshold the task goes to the community's reserve pool instead of piling
//! onto someone who is already drowning.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::Priority;

/// How much one open task of each priority weighs in a workload. An urgent
/// task weighs more because it interrupts everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityWeights {
    pub urgent: u32,
    pub high: u32,
    pub normal: u32,
    pub low: u32,
}

impl Default for PriorityWeights {
    fn default() -> Self {
        Self { urgent: 4, high: 3, normal: 2, low: 1 }
    }
}

impl PriorityWeights {
    pub fn weight(&self, priority: Priority) -> u32 {
        match priority {
            Priority::Urgent => self.urgent,
            Priority::High => self.high,
            Priority::Normal => self.normal,
            Priority::Low => self.low,
        }
    }
}

/// The dispatch configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchPolicy {
    /// A worker whose open load is at or above this takes no automatic task.
    pub overload_threshold: u32,
    #[serde(default)]
    pub weights: PriorityWeights,
}

impl Default for DispatchPolicy {
    /// 20 is ten normal tasks (or five urgent ones) open at once.
    fn default() -> Self {
        Self { overload_threshold: 20, weights: PriorityWeights::default() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DispatchPolicyError {
    #[error("the overload threshold must be positive, or every task goes to the reserve pool")]
    ZeroThreshold,
    #[error("priority weights must be positive, or those tasks would not count as load")]
    ZeroWeight,
}

impl crate::ReasonCode for DispatchPolicyError {
    fn code(&self) -> &'static str {
        match self {
            DispatchPolicyError::ZeroThreshold => "dispatch.zero_threshold",
            DispatchPolicyError::ZeroWeight => "dispatch.zero_weight",
        }
    }
}

impl DispatchPolicy {
    pub fn validate(&self) -> Result<(), DispatchPolicyError> {
        if self.overload_threshold == 0 {
            return Err(DispatchPolicyError::ZeroThreshold);
        }
        if Priority::ALL.into_iter().any(|p| self.weights.weight(p) == 0) {
            return Err(DispatchPolicyError::ZeroWeight);
        }
        Ok(())
    }
}

/// A worker who could take the task, with what they already hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub account_id: Uuid,
    /// Sum of the priority weights of the worker's open tasks (states that
    /// `count_toward_workload`).
    pub open_load: u32,
    pub open_tasks: u32,
}

impl Candidate {
    /// Sums the workload from the priorities of the worker's open tasks.
    pub fn from_open_tasks(
        account_id: Uuid,
        open_priorities: impl IntoIterator<Item = Priority>,
        weights: &PriorityWeights,
    ) -> Self {
        let (open_load, open_tasks) = open_priorities
            .into_iter()
            .fold((0u32, 0u32), |(load, n), p| (load.saturating_add(weights.weight(p)), n + 1));
        Self { account_id, open_load, open_tasks }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DispatchDecision {
    ToWorker(Uuid),
    /// No worker of the grid can take it: the community's reserve pool does.
    ToReservePool,
}

/// Picks the worker with the least open load among those below the
/// threshold. Ties go to the one with fewer open tasks (lighter tasks are
/// quicker to clear), then to the smaller account id, so the choice never
/// depends on the order the candidates were listed in.
pub fn choose_assignee(candidates: &[Candidate], overload_threshold: u32) -> DispatchDecision {
    candidates
        .iter()
        .filter(|c| c.open_load < overload_threshold)
        .min_by_key(|c| (c.open_load, c.open_tasks, c.account_id))
        .map_or(DispatchDecision::ToReservePool, |c| DispatchDecision::ToWorker(c.account_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;
    use proptest::prelude::*;

    fn worker(n: u128, open_load: u32, open_tasks: u32) -> Candidate {
        Candidate { account_id: Uuid::from_u128(n), open_load, open_tasks }
    }

    /// Dispatches `tasks` one by one, adding each task's weight to whoever
    /// gets it, and returns the final loads and how many went to the pool.
    fn dispatch_all(workers: &mut [Candidate], tasks: &[u32], threshold: u32) -> usize {
        let mut to_pool = 0;
        for &weight in tasks {
            match choose_assignee(workers, threshold) {
                DispatchDecision::ToWorker(id) => {
                    let w = workers.iter_mut().find(|w| w.account_id == id).unwrap();
                    w.open_load += weight;
                    w.open_tasks += 1;
                }
                DispatchDecision::ToReservePool => to_pool += 1,
            }
        }
        to_pool
    }

    #[test]
    fn three_workers_and_thirty_equal_tasks_end_within_one_of_each_other() {
        let mut workers = [worker(1, 0, 0), worker(2, 0, 0), worker(3, 0, 0)];
        let weight = PriorityWeights::default().weight(Priority::Normal);
        let to_pool = dispatch_all(&mut workers, &[weight; 30], 1000);
        assert_eq!(to_pool, 0);
        let tasks: Vec<_> = workers.iter().map(|w| w.open_tasks).collect();
        assert_eq!(tasks, [10, 10, 10]);
        let loads: Vec<_> = workers.iter().map(|w| w.open_load).collect();
        let spread = loads.iter().max().unwrap() - loads.iter().min().unwrap();
        assert!(spread <= 1, "{loads:?}");
    }

    #[test]
    fn an_overloaded_grid_sends_work_to_the_reserve_pool() {
        let threshold = DispatchPolicy::default().overload_threshold;
        // 3 workers × 10 normal tasks of weight 2 reach 20 each: the 31st
        // task and every one after it goes to the pool.
        let mut workers = [worker(1, 0, 0), worker(2, 0, 0), worker(3, 0, 0)];
        let to_pool = dispatch_all(&mut workers, &[2; 35], threshold);
        assert_eq!(to_pool, 5);
        assert!(workers.iter().all(|w| w.open_load == threshold));
        // At the threshold exactly is already overloaded.
        assert_eq!(choose_assignee(&[worker(1, 20, 10)], 20), DispatchDecision::ToReservePool);
        assert_eq!(
            choose_assignee(&[worker(1, 19, 10)], 20),
            DispatchDecision::ToWorker(Uuid::from_u128(1))
        );
        // A grid without workers has only the pool.
        assert_eq!(choose_assignee(&[], 20), DispatchDecision::ToReservePool);
    }

    #[test]
    fn ties_break_by_open_tasks_then_by_id_whatever_the_order() {
        let a = worker(3, 4, 2);
        let b = worker(2, 4, 1);
        let c = worker(1, 4, 1);
        for list in [[a, b, c], [c, b, a], [b, a, c]] {
            assert_eq!(choose_assignee(&list, 20), DispatchDecision::ToWorker(Uuid::from_u128(1)));
        }
        assert_eq!(
            choose_assignee(&[worker(1, 5, 1), worker(2, 4, 2)], 20),
            DispatchDecision::ToWorker(Uuid::from_u128(2)),
            "load comes before task count"
        );
    }

    #[test]
    fn workloads_are_weighted_sums() {
        let weights = PriorityWeights::default();
        let c = Candidate::from_open_tasks(
            Uuid::from_u128(9),
            [Priority::Urgent, Priority::Low, Priority::Normal],
            &weights,
        );
        assert_eq!((c.open_load, c.open_tasks), (4 + 1 + 2, 3));
    }

    #[test]
    fn policies_are_validated() {
        assert_eq!(DispatchPolicy::default().validate(), Ok(()));
        let zero = DispatchPolicy { overload_threshold: 0, ..DispatchPolicy::default() };
        assert_eq!(zero.validate().unwrap_err().code(), "dispatch.zero_threshold");
        let weights = PriorityWeights { low: 0, ..PriorityWeights::default() };
        let policy = DispatchPolicy { weights, ..DispatchPolicy::default() };
        assert_eq!(policy.validate().unwrap_err().code(), "dispatch.zero_weight");
        let parsed: DispatchPolicy = serde_json::from_str(r#"{"overload_threshold": 12}"#).unwrap();
        assert_eq!(parsed.weights, PriorityWeights::default());
    }

    /// Up to a dozen workers with distinct ids (as a grid's roster has).
    fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
        prop::collection::btree_map(0u128..50, (0u32..40, 0u32..20), 0..12)
            .prop_map(|m| m.into_iter().map(|(id, (load, n))| worker(id, load, n)).collect())
    }

    proptest! {
        #[test]
        fn the_chosen_worker_has_minimal_load(list in candidates(), threshold in 1u32..40) {
            match choose_assignee(&list, threshold) {
                DispatchDecision::ToWorker(id) => {
                    let chosen = list.iter().find(|c| c.account_id == id).unwrap();
                    prop_assert!(chosen.open_load < threshold);
                    prop_assert!(list.iter().all(|c| c.open_load >= chosen.open_load));
                }
                DispatchDecision::ToReservePool => {
                    prop_assert!(list.iter().all(|c| c.open_load >= threshold));
                }
            }
        }

        #[test]
        fn the_choice_does_not_depend_on_the_order(
            mut list in candidates(),
            threshold in 1u32..40,
        ) {
            let before = choose_assignee(&list, threshold);
            list.reverse();
            prop_assert_eq!(choose_assignee(&list, threshold), before);
        }

        #[test]
        fn dispatching_from_zero_keeps_loads_within_the_heaviest_weight(
            n_workers in 1u128..8,
            tasks in prop::collection::vec(prop::sample::select(vec![1u32, 2, 3, 4]), 0..100),
        ) {
            let mut workers: Vec<_> = (0..n_workers).map(|i| worker(i, 0, 0)).collect();
            prop_assert_eq!(dispatch_all(&mut workers, &tasks, u32::MAX), 0);
            let max = workers.iter().map(|w| w.open_load).max().unwrap();
            let min = workers.iter().map(|w| w.open_load).min().unwrap();
            prop_assert!(max - min <= 4, "{:?}", workers);
        }
    }
}
