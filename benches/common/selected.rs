//! Whether a backend's benchmarks were asked for, so that a run filtered to one backend does not
//! build and warm up the others' models (on wgpu that means compiling kernels for minutes).

/// True without a filter, or when a filter argument names `backend` (`-- wgpu`,
/// `-- 'speech_train_step/flex'`).
pub fn selected(backend: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| f.contains(backend))
}
