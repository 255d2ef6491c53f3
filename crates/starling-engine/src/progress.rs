//! `check` and `rebuild` that report how far they have come, for tools that
//! draw progress bars over a large store.

use std::collections::HashSet;

use starling_core::{Durability, Result, UserId};
use starling_inbox::{CheckReport, Problem, Progress, Stage, check_with_progress, repairs};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::Engine;

/// Repairs written per synced batch by a rebuild.
const REPAIR_BATCH: usize = 10_000;

impl<B: Backend> Engine<B> {
    /// [`Engine::check`], calling `progress` as it goes (after each user, each
    /// page of posts and of jobs). Returns the same report as `check`.
    ///
    /// A backend that applies batches in parts (a cluster) may show a
    /// batch under way half applied: when the check finds problems, it
    /// waits for the batches under way ([`Backend::settle`]) and checks
    /// again, and reports only the problems both checks found in the same
    /// place. Damage stays; a batch that was under way does not.
    pub fn check_with_progress(&self, progress: &dyn Fn(Progress)) -> Result<CheckReport> {
        self.wait_for_fanout()?;
        let s = &self.shared;
        let once = || {
            let now = unix_millis();
            let may_lag = |u: UserId| s.activity.inactive(u, s.config.inactive_after_ms, now);
            check_with_progress(
                &s.backend,
                s.config.backfill_posts,
                s.config.inbox_cap,
                &may_lag,
                progress,
            )
        };
        let first = once()?;
        if first.is_clean() {
            return Ok(first);
        }
        s.backend.settle()?;
        let mut second = once()?;
        let again: HashSet<String> = second.problems.iter().map(Problem::place).collect();
        second.problems = first
            .problems
            .into_iter()
            .filter(|p| again.contains(&p.place()))
            .collect();
        Ok(second)
    }

    /// [`Engine::rebuild`], calling `progress` during each round's check and
    /// after each batch of repairs ([`Stage::Repairs`]). Returns the report of
    /// what was repaired, as `rebuild` does.
    pub fn rebuild_with_progress(&self, progress: &dyn Fn(Progress)) -> Result<CheckReport> {
        let first = self.check_with_progress(progress)?;
        let mut report = first.clone();
        for _round in 0..3 {
            if report.is_clean() {
                break;
            }
            let all = repairs(&report);
            let total = all.len() as u64;
            let mut done = 0;
            for chunk in all.chunks(REPAIR_BATCH) {
                self.shared.write(chunk, Durability::Synced)?;
                done += chunk.len() as u64;
                progress(Progress {
                    stage: Stage::Repairs,
                    done,
                    total: Some(total),
                });
            }
            report = self.check_with_progress(progress)?;
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use starling_core::{Config, Counts, Mutation, UserId};
    use starling_inbox::{Progress, Stage};
    use starling_store::Backend;

    use crate::Engine;
    use starling_memstore::MemBackend;

    fn engine_with_posts() -> Engine<MemBackend> {
        let engine = Engine::with_backend(MemBackend::new(), Config::default()).expect("open");
        let ada = engine.create_user("ada").expect("ada").id;
        for i in 0..5 {
            let f = engine.create_user(&format!("f{i}")).expect("user").id;
            engine.follow(f, ada).expect("follow");
        }
        for i in 0..3 {
            engine.post(ada, &format!("post {i}")).expect("post");
        }
        engine
    }

    #[test]
    fn check_with_progress_reports_every_user_and_the_same_report() {
        let engine = engine_with_posts();
        let seen = RefCell::new(Vec::<Progress>::new());
        let report = engine
            .check_with_progress(&|p| seen.borrow_mut().push(p))
            .expect("check");
        assert_eq!(report, engine.check().expect("check"));
        let seen = seen.into_inner();
        let users: Vec<u64> = seen
            .iter()
            .filter(|p| p.stage == Stage::Users)
            .map(|p| p.done)
            .collect();
        assert_eq!(users, vec![0, 1, 2, 3, 4, 5, 6], "one report per user id");
        assert!(
            seen.iter()
                .filter(|p| matches!(p.stage, Stage::Users | Stage::Counts))
                .all(|p| p.total == Some(6))
        );
        let posts = seen.iter().rfind(|p| p.stage == Stage::Posts);
        assert_eq!(posts.map(|p| p.done), Some(report.posts));
        assert!(posts.is_some_and(|p| p.done == 3));
    }

    #[test]
    fn rebuild_with_progress_counts_its_repairs_and_repairs() {
        let engine = engine_with_posts();
        engine.wait_for_fanout().expect("idle");
        let damage = [
            Mutation::SetCounts {
                user: UserId(1),
                counts: Counts {
                    followers: 1,
                    following: 4,
                },
            },
            Mutation::SetCounts {
                user: UserId(2),
                counts: Counts {
                    followers: 9,
                    following: 9,
                },
            },
        ];
        engine
            .backend()
            .apply(&damage, starling_core::Durability::Synced)
            .expect("damage");
        let seen = RefCell::new(Vec::<Progress>::new());
        let report = engine
            .rebuild_with_progress(&|p| seen.borrow_mut().push(p))
            .expect("rebuild");
        assert_eq!(report.problems.len(), 2);
        let repairs: Vec<Progress> = seen
            .into_inner()
            .into_iter()
            .filter(|p| p.stage == Stage::Repairs)
            .collect();
        assert_eq!(
            repairs,
            vec![Progress {
                stage: Stage::Repairs,
                done: 2,
                total: Some(2)
            }]
        );
        assert!(engine.check().expect("check").is_clean());
    }
}
