//! The scheduler's `Machine` as the raftstore's state machine.

use khop_scheduler::Machine;

/// The replicated state: applies the scheduler's JSON commands in log order.
pub struct SchedulerSm(pub(crate) Machine);

impl khop_raftstore::StateMachine for SchedulerSm {
    fn apply(&mut self, index: u64, command: &[u8]) -> Vec<u8> {
        self.0.apply(index, command)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.0.restore(snapshot).map_err(|e| e.to_string())
    }
}
