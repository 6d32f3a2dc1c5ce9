use crate::state::AppState;
use crate::tasks::kinds::TaskKind;

pub fn available(_state: &AppState) -> Vec<std::sync::Arc<dyn TaskKind>> {
    Vec::new()
}
