//! The in-memory backends pass the storage seam's conformance suite: the
//! reference backend, and the fault-injecting wrapper with no faults
//! planned (and, with a write fault planned, refusing a batch whole).

use starling_memstore::{FaultKind, FaultPlan, FaultyBackend, MemBackend};

mod mem {
    use super::*;

    starling_store::conformance_tests!(MemBackend::new);
}

mod faulty {
    use super::*;

    fn no_faults() -> FaultyBackend<MemBackend> {
        FaultyBackend::new(MemBackend::new(), FaultPlan::Never, FaultKind::Write)
    }

    starling_store::conformance_tests!(no_faults);

    #[test]
    fn refused_apply_leaves_nothing() {
        starling_store::conformance::refused_apply_leaves_nothing(&mut |accepted| {
            FaultyBackend::new(
                MemBackend::new(),
                FaultPlan::AfterWrites(accepted),
                FaultKind::Write,
            )
        });
    }
}
