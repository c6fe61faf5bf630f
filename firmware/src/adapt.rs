//! The session's adaptive input stage and its timing-fault emulation: the
//! drift monitor that watches the sensor and re-fits the input table
//! (`Request::Adapt`, `Request::Drift`), and the transient output-bit
//! flips with the guard policy that answers them (`Request::TimingFaults`).

use crate::board::Target;
use crate::faults::model_fault;
use crate::linked::LinkedModel;
use crate::linked::DRIFT_SLOTS;
use sturdy_protocol::{DriftStats, ErrorCode};
use sturdy_runtime::{DriftEvent, DriftMonitor, GuardReport};

/// What a session adds around each inference.
pub struct Adaptive {
    /// The running monitor, if any: no slot at all (no RAM) when the linked
    /// artifact has no DRIFT section.
    monitor: [Option<DriftMonitor>; DRIFT_SLOTS],
    /// The last inference's drift counters and costs.
    stats: DriftStats,
    /// The timing-fault source (no faults by default).
    #[cfg(feature = "timing-faults")]
    faults: sturdy_runtime::TimingFaults,
    /// What the guards do (the artifact's thresholds by default).
    #[cfg(feature = "timing-faults")]
    policy: sturdy_runtime::GuardPolicy,
}

impl Adaptive {
    /// No monitor, no faults, the stored guard policy.
    pub const fn new() -> Self {
        Adaptive {
            monitor: [const { None }; DRIFT_SLOTS],
            stats: DriftStats {
                samples: 0,
                statistic: 0,
                cusum: 0,
                refits: 0,
                rollbacks: 0,
                first_alarm: None,
                refitted: false,
                rolled_back: false,
                values_observed: 0,
                input_cost: 0,
                output_cost: 0,
                refit_cost: 0,
                ram_bytes: 0,
            },
            #[cfg(feature = "timing-faults")]
            faults: sturdy_runtime::TimingFaults::NONE,
            #[cfg(feature = "timing-faults")]
            policy: sturdy_runtime::GuardPolicy::Stored,
        }
    }

    /// Starts a fresh monitor for `model` (`on`) or stops it.
    pub fn adapt(&mut self, model: &LinkedModel<'_>, on: bool) -> Result<(), ErrorCode> {
        let fault = |e: sturdy_runtime::Error| ErrorCode::Model(model_fault(&e));
        let Some(slot) = self.monitor.first_mut() else {
            return match on {
                true => Err(fault(sturdy_runtime::Error::NoDriftMonitor)),
                false => Ok(()),
            };
        };
        *slot = None;
        self.stats = Adaptive::new().stats;
        if on {
            let monitor = DriftMonitor::new(model.artifact(), model.input_len()).map_err(fault)?;
            self.stats.values_observed = monitor.observed_per_input(model.input_len()) as u32;
            self.stats.ram_bytes = DriftMonitor::RAM_BYTES as u32;
            *slot = Some(monitor);
            defmt::info!(
                "drift monitor on: {=usize} B of RAM",
                DriftMonitor::RAM_BYTES
            );
        }
        Ok(())
    }

    /// Whether the monitor runs.
    pub fn adapting(&self) -> bool {
        matches!(self.monitor.first(), Some(Some(_)))
    }

    /// Sets the timing-fault emulation and the guard policy.
    #[cfg(feature = "timing-faults")]
    pub fn set_timing_faults(
        &mut self,
        rate_ppb: u32,
        seed: u32,
        mode: sturdy_protocol::GuardMode,
    ) {
        use sturdy_protocol::GuardMode;
        use sturdy_runtime::GuardPolicy;
        self.faults = sturdy_runtime::TimingFaults::new(rate_ppb, seed);
        self.policy = match mode {
            GuardMode::Off => GuardPolicy::Off,
            GuardMode::Clamp => GuardPolicy::Clamp,
            GuardMode::Stored => GuardPolicy::Stored,
            GuardMode::Strict => GuardPolicy::Strict,
            GuardMode::Redundant => GuardPolicy::Redundant,
        };
    }

    /// Output bits the timing-fault emulation has flipped (0 without it).
    pub fn flipped(&self) -> u32 {
        #[cfg(feature = "timing-faults")]
        return self.faults.flipped();
        #[cfg(not(feature = "timing-faults"))]
        return 0;
    }

    /// Runs op `op` guarded: under the timing-fault emulation and its
    /// guard policy in a `timing-faults` build, as stored otherwise.
    pub fn invoke_op(
        &mut self,
        model: &LinkedModel<'_>,
        op: usize,
        arena: &mut [u8],
        reverify: &mut dyn FnMut(usize) -> Result<(), sturdy_runtime::Error>,
        report: &mut GuardReport,
    ) -> Result<(), sturdy_runtime::Error> {
        #[cfg(feature = "timing-faults")]
        return model.invoke_op_with(op, arena, self.policy, &mut self.faults, reverify, report);
        #[cfg(not(feature = "timing-faults"))]
        return model.invoke_op_guarded(op, arena, reverify, report);
    }

    /// Before the ops: counts the loaded input and maps it through the
    /// monitor's table (a no-op without a monitor).
    pub fn before<T: Target>(
        &mut self,
        model: &LinkedModel<'_>,
        arena: &mut [u8],
        target: &mut T,
    ) -> Result<(), ErrorCode> {
        let Some(Some(monitor)) = self.monitor.first_mut() else {
            return Ok(());
        };
        let input = model
            .input_mut(arena)
            .map_err(|e| ErrorCode::Model(model_fault(&e)))?;
        let start = target.now();
        monitor.observe_input(input);
        self.stats.input_cost = target.now().saturating_sub(start);
        Ok(())
    }

    /// After the ops: feeds the output to the monitor (statistic, detector,
    /// re-fit or rollback) and records what it did and cost.
    pub fn after<T: Target>(
        &mut self,
        model: &LinkedModel<'_>,
        arena: &[u8],
        target: &mut T,
    ) -> Result<(), ErrorCode> {
        let Some(Some(monitor)) = self.monitor.first_mut() else {
            return Ok(());
        };
        let fault = |e: sturdy_runtime::Error| ErrorCode::Model(model_fault(&e));
        let output = model.output(arena).map_err(fault)?;
        let start = target.now();
        let event = monitor
            .observe_output(model.artifact(), output)
            .map_err(fault)?;
        let cost = target.now().saturating_sub(start);
        let status = monitor.status();
        let s = &mut self.stats;
        s.samples = status.samples;
        s.statistic = status.statistic;
        s.cusum = status.cusum;
        s.refits = status.refits;
        s.rollbacks = status.rollbacks;
        s.first_alarm = status.first_alarm;
        s.refitted = event == DriftEvent::Refit;
        s.rolled_back = event == DriftEvent::Rollback;
        s.output_cost = cost;
        if s.refitted {
            s.refit_cost = cost;
            defmt::info!("drift: re-fit at sample {=u32}", status.samples);
        }
        Ok(())
    }

    /// The monitor's counters ([`ErrorCode::NotAdapting`] when it is off).
    pub fn drift(&self) -> Result<DriftStats, ErrorCode> {
        match self.adapting() {
            true => Ok(self.stats),
            false => Err(ErrorCode::NotAdapting),
        }
    }
}
