//! Protected accounts and follow requests.
//!
//! A protected account's posts, past and future, are seen by the account
//! and its followers only, on every read path (the rule lives in
//! `starling_inbox::view::Viewer`, so it is decided at read time like
//! blocks and audiences). Following a protected account takes a request
//! that it approves or denies and the requester may cancel.
//!
//! - Protecting keeps every existing follower: they were accepted when
//!   they followed, and they keep reading. Everyone else stops seeing the
//!   account's posts at once (reposts of them included), with nothing to
//!   delete: inboxes only ever held the posts for followers, and the
//!   reposts left in others' inboxes are filtered at read time.
//! - Making the account public again approves every pending request
//!   first (each a follow with its backfill, as if the requester followed
//!   now), then lifts the protection: nobody who asked is left waiting on
//!   an account that no longer takes requests, and everyone sees the
//!   account's posts again at once.
//!
//! State: [`LinkKind::Protected`] `(user, 0)`, and each pending request
//! stored both ways, [`LinkKind::FollowRequests`] (listed by the account
//! asked) and [`LinkKind::RequestsSent`] (listed by the requester), added
//! and removed in one batch; `check` reports a missing mirror.

use starling_core::{Cursor, Error, LinkKind, Mutation, Result, UserId};
use starling_graph::{blocked_either, check_edge, has_request, is_protected};
use starling_log::unix_millis;
use starling_store::Backend;

use crate::base::Shared;
use crate::engine::Engine;
use crate::events::Event;
use crate::users::UserPage;

/// Where a follow asked for by a user stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum FollowState {
    /// The user follows the account (a public one, or one that had
    /// approved them before).
    Following,
    /// A request waits for the (protected) account to approve it.
    Requested,
}

impl<B: Backend> Engine<B> {
    /// Makes `user`'s account protected (see the module docs: existing
    /// followers stay). Returns whether it was public.
    pub fn protect(&self, user: UserId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        // The author stripe orders protection against follows of the user
        // and against their posts' mentions.
        let _author = s.authors.lock(user);
        if is_protected(&s.backend, user)? {
            return Ok(false);
        }
        s.write(
            &[Mutation::PutLink {
                kind: LinkKind::Protected,
                from: user.0,
                to: 0,
                value: unix_millis(),
            }],
            s.config.durability,
        )?;
        Ok(true)
    }

    /// Makes `user`'s account public again: every pending request is
    /// approved (oldest requester id first, each in its own batch), then
    /// the protection is lifted. Returns whether it was protected.
    ///
    /// Stopped in the middle (a crash, a failed write), the account is
    /// still protected with fewer requests pending, a state like any
    /// other; calling it again finishes the job.
    pub fn unprotect(&self, user: UserId) -> Result<bool> {
        let s = self.shared.writing(&[user])?;
        loop {
            let mut pending = Vec::new();
            s.backend.links(
                LinkKind::FollowRequests,
                user.0,
                None,
                starling_core::MAX_PAGE_SIZE,
                &mut pending,
            )?;
            for &(requester, _) in &pending {
                s.approve(user, UserId(requester))?;
            }
            if !pending.is_empty() {
                continue;
            }
            let _author = s.authors.lock(user);
            if !is_protected(&s.backend, user)? {
                return Ok(false);
            }
            // A request that arrived after the scan waits under this lock:
            // approve it too before the account turns public.
            s.backend
                .links(LinkKind::FollowRequests, user.0, None, 1, &mut pending)?;
            if !pending.is_empty() {
                continue;
            }
            s.write(
                &[Mutation::DeleteLink {
                    kind: LinkKind::Protected,
                    from: user.0,
                    to: 0,
                }],
                s.config.durability,
            )?;
            return Ok(true);
        }
    }

    /// Whether `user`'s account is protected.
    pub fn is_protected(&self, user: UserId) -> Result<bool> {
        let s = self.shared.known(&[user])?;
        is_protected(&s.backend, user)
    }

    /// `requester` asks to follow the protected account `account`.
    /// Returns whether the request is new: asking twice, or asking an
    /// account one follows already, changes nothing. A public account is
    /// followed without a request ([`Error::NotProtected`]); none is sent
    /// across a block ([`Error::Blocked`]).
    pub fn request_follow(&self, requester: UserId, account: UserId) -> Result<bool> {
        match self.follow_request_or_edge(requester, account, Want::Request)? {
            (FollowState::Requested, new) => Ok(new),
            (FollowState::Following, _) => Ok(false),
        }
    }

    /// What a user pressing "follow" wants: follows a public account (see
    /// [`Engine::follow`]), or sends a protected one a follow request (see
    /// [`Engine::request_follow`]), decided under the account's lock so
    /// that a change of protection cannot slip in between.
    pub fn follow_or_request(&self, follower: UserId, account: UserId) -> Result<FollowState> {
        self.follow_request_or_edge(follower, account, Want::Either)
            .map(|(state, _)| state)
    }

    fn follow_request_or_edge(
        &self,
        requester: UserId,
        account: UserId,
        want: Want,
    ) -> Result<(FollowState, bool)> {
        check_edge(requester, account)?;
        let s = self.shared.writing(&[requester, account])?;
        let _locks = s.lock_inbox(requester, account);
        if s.backend.edge(requester, account)?.is_some() {
            return Ok((FollowState::Following, false));
        }
        if blocked_either(&s.backend, requester, account)? {
            return Err(Error::Blocked("cannot follow across a block"));
        }
        let mut batch = Vec::new();
        if !is_protected(&s.backend, account)? {
            if want == Want::Request {
                return Err(Error::NotProtected(account));
            }
            s.follow_batch(requester, account, &mut batch)?;
            s.write(&batch, s.config.durability)?;
            s.publish_inbox_changes(&batch);
            return Ok((FollowState::Following, true));
        }
        if has_request(&s.backend, requester, account)? {
            return Ok((FollowState::Requested, false));
        }
        let at = unix_millis();
        batch.extend([
            Mutation::PutLink {
                kind: LinkKind::FollowRequests,
                from: account.0,
                to: requester.0,
                value: at,
            },
            Mutation::PutLink {
                kind: LinkKind::RequestsSent,
                from: requester.0,
                to: account.0,
                value: at,
            },
        ]);
        s.write(&batch, s.config.durability)?;
        s.hub.publish(std::iter::once((
            account,
            Event::FollowRequest { from: requester },
        )));
        Ok((FollowState::Requested, true))
    }

    /// `account` approves `requester`'s pending request: `requester` now
    /// follows it, with the backfill of a follow, in one batch with the
    /// request's removal. [`Error::UnknownFollowRequest`] when there is no
    /// such request.
    pub fn approve_follow_request(&self, account: UserId, requester: UserId) -> Result<()> {
        let s = self.shared.writing(&[account, requester])?;
        if s.approve(account, requester)? {
            Ok(())
        } else {
            Err(Error::UnknownFollowRequest {
                from: requester,
                to: account,
            })
        }
    }

    /// `account` denies `requester`'s pending request, which is removed
    /// (the requester may ask again). [`Error::UnknownFollowRequest`] when
    /// there is no such request.
    pub fn deny_follow_request(&self, account: UserId, requester: UserId) -> Result<()> {
        self.drop_request(requester, account)
    }

    /// `requester` withdraws their pending request to `account`.
    /// [`Error::UnknownFollowRequest`] when there is no such request.
    pub fn cancel_follow_request(&self, requester: UserId, account: UserId) -> Result<()> {
        self.drop_request(requester, account)
    }

    fn drop_request(&self, requester: UserId, account: UserId) -> Result<()> {
        let s = self.shared.writing(&[account, requester])?;
        let _locks = s.lock_inbox(requester, account);
        if !has_request(&s.backend, requester, account)? {
            return Err(Error::UnknownFollowRequest {
                from: requester,
                to: account,
            });
        }
        let mut batch = Vec::new();
        request_removal(requester, account, &mut batch);
        s.write(&batch, s.config.durability)
    }

    /// A page of the requests pending for `account`: the requesters, in id
    /// order.
    pub fn follow_requests(
        &self,
        account: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        self.link_page(LinkKind::FollowRequests, account, cursor, limit)
    }

    /// A page of the accounts `requester` has asked to follow and that
    /// have not answered yet, in id order.
    pub fn sent_follow_requests(
        &self,
        requester: UserId,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<UserPage> {
        self.link_page(LinkKind::RequestsSent, requester, cursor, limit)
    }
}

/// What [`Engine::follow_request_or_edge`] may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Only a request: a public account is refused.
    Request,
    /// Whichever the account takes.
    Either,
}

/// Appends the removal of the request from `requester` to `account`, both
/// ways.
pub(crate) fn request_removal(requester: UserId, account: UserId, batch: &mut Vec<Mutation>) {
    batch.extend([
        Mutation::DeleteLink {
            kind: LinkKind::FollowRequests,
            from: account.0,
            to: requester.0,
        },
        Mutation::DeleteLink {
            kind: LinkKind::RequestsSent,
            from: requester.0,
            to: account.0,
        },
    ]);
}

impl<B: Backend> Shared<B> {
    /// Approves the request from `requester` to `account`, if there is
    /// one: the follow (unless there is an edge already) and the request's
    /// removal, one batch. Returns whether there was a request.
    fn approve(&self, account: UserId, requester: UserId) -> Result<bool> {
        let _locks = self.lock_inbox(requester, account);
        if !has_request(&self.backend, requester, account)? {
            return Ok(false);
        }
        let mut batch = Vec::new();
        request_removal(requester, account, &mut batch);
        // A block removes requests in its own batch, so none is found
        // across one; checked all the same, an edge is never made there.
        if self.backend.edge(requester, account)?.is_none()
            && !blocked_either(&self.backend, requester, account)?
        {
            self.follow_batch(requester, account, &mut batch)?;
        }
        self.write(&batch, self.config.durability)?;
        self.publish_inbox_changes(&batch);
        Ok(true)
    }
}
