// The Starling web page: sign up or log in, post, reply, repost, like,
// follow, block and mute by username (a protected account gets a follow
// request), edit one's display name and bio, protect one's own account and
// answer follow requests, read the posts mentioning one, send direct
// messages and read each conversation as a thread, link a phone (asking
// for the code texted to it) and switch texts on per account followed,
// run groups and post to them, open a post's thread, upload a picture,
// download everything one has (the export), and watch the home timeline
// update live, each post with its author's picture and display name.
// Plain JavaScript, no build step.
//
// The token lives in sessionStorage (this tab only). The live stream is
// read with fetch() rather than EventSource, because EventSource cannot
// send an Authorization header, and a token in a URL ends up in logs.
"use strict";

const $ = (id) => document.getElementById(id);

const session = {
  get token() { return sessionStorage.getItem("starling.token"); },
  get user() {
    const raw = sessionStorage.getItem("starling.user");
    return raw ? JSON.parse(raw) : null;
  },
  save(token, user) {
    sessionStorage.setItem("starling.token", token);
    sessionStorage.setItem("starling.user", JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem("starling.token");
    sessionStorage.removeItem("starling.user");
  },
};

let nextCursor = null;
let liveAbort = null;

function say(message, ok) {
  const status = $("status");
  status.textContent = message || "";
  status.className = ok ? "ok" : "";
}

async function api(method, path, body) {
  const headers = {};
  if (session.token) headers["Authorization"] = "Bearer " + session.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && session.token) signedOut();
    const error = new Error(data.error || response.statusText);
    error.code = data.code;
    error.status = response.status;
    throw error;
  }
  return data;
}

function byNewest(a, b) {
  const x = BigInt(a), y = BigInt(b);
  return x > y ? -1 : x < y ? 1 : 0;
}

function renderPost(post, fresh) {
  const li = document.createElement("li");
  li.dataset.id = post.id;
  if (fresh) li.className = "fresh";
  // A repost shows its original (with the reposter named above it).
  const shown = shownPost(post, li, fresh);
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("strong");
  who.textContent = "@" + shown.author.username;
  const when = document.createElement("time");
  when.dateTime = new Date(shown.created_at_ms).toISOString();
  when.textContent = new Date(shown.created_at_ms).toLocaleString();
  meta.append(avatarElement(shown.author), displayNameSpan(shown.author), who, when);
  const me = session.user;
  if (me && post.author.id === me.id) {
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "Delete";
    del.addEventListener("click", () => deletePost(post.id));
    meta.append(del);
  }
  const text = document.createElement("p");
  text.className = "text";
  text.append(...withTagLinks(shown.text));
  const actions = document.createElement("div");
  actions.className = "actions";
  const like = document.createElement("button");
  like.type = "button";
  like.className = "like";
  showLike(like, post.liked, post.likes);
  like.addEventListener("click", () => toggleLike(like, post.id));
  actions.append(like, replyButton(shown), repostButton(shown), threadButton(shown));
  li.append(...postNotes(post, shown), meta, text, actions);
  return li;
}

// A like button shows whether the reader likes the post, and its count.
function showLike(button, liked, likes) {
  button.setAttribute("aria-pressed", liked ? "true" : "false");
  button.dataset.likes = String(likes);
  button.title = liked ? "Unlike" : "Like";
  button.textContent = (liked ? "♥ " : "♡ ") + likes;
}

async function toggleLike(button, id) {
  const liked = button.getAttribute("aria-pressed") === "true";
  try {
    const result = await api(liked ? "DELETE" : "PUT", `/api/posts/${id}/like`);
    const likes = result.likes ?? Number(button.dataset.likes);
    showLike(button, result.liked, likes);
  } catch (error) {
    say(error.status === 403 ? "You cannot like this post." : error.message);
  }
}

// Inserts a post where its id puts it (newest first), once.
function insertPost(post, fresh) {
  const list = $("timeline");
  if (list.querySelector(`li[data-id="${post.id}"]`)) return;
  const li = renderPost(post, fresh);
  for (const other of list.children) {
    if (byNewest(post.id, other.dataset.id) < 0) {
      list.insertBefore(li, other);
      return;
    }
  }
  list.append(li);
}

function removePost(id) {
  for (const li of document.querySelectorAll(`.posts li[data-id="${id}"]`)) li.remove();
}

function newestId() {
  const first = $("timeline").firstElementChild;
  return first ? first.dataset.id : "";
}

async function loadTimeline(more) {
  const query = new URLSearchParams({ limit: "20" });
  if (more && nextCursor) query.set("cursor", nextCursor);
  const page = await api("GET", "/api/home?" + query);
  rememberOriginals(page);
  if (!more) $("timeline").replaceChildren();
  for (const post of page.posts) insertPost(post, false);
  nextCursor = page.next;
  $("more").hidden = !nextCursor;
}

async function refreshMe() {
  const data = await api("GET", "/api/me");
  $("me-name").textContent = "@" + data.user.username;
  $("me-counts").textContent =
    `${data.counts.followers} followers · ${data.counts.following} following`;
}

// Reads the server-sent events of the home timeline over fetch, and
// reconnects (asking for what it missed) until logged out.
async function live() {
  if (liveAbort) liveAbort.abort();
  const abort = new AbortController();
  liveAbort = abort;
  while (!abort.signal.aborted && session.token) {
    try {
      const query = new URLSearchParams();
      const since = newestId();
      if (since) query.set("since", since);
      const response = await fetch("/api/home/events?" + query, {
        headers: { Authorization: "Bearer " + session.token, Accept: "text/event-stream" },
        signal: abort.signal,
      });
      if (response.status === 401) { signedOut(); return; }
      if (!response.ok || !response.body) throw new Error("stream refused: " + response.status);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
    }
    $("live").textContent = "(reconnecting…)";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function handleEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return;
  const payload = JSON.parse(data.join("\n"));
  if (type === "ready") $("live").textContent = "(live)";
  else if (type === "post") insertPost(payload, true);
  else if (type === "retract") removePost(payload.id);
}

function signedIn() {
  $("auth").hidden = true;
  $("app").hidden = false;
  $("whoami").hidden = false;
  refreshMe().catch((e) => say(e.message));
  loadConversations().catch((e) => say(e.message));
  loadPhone().catch((e) => say(e.message));
  loadProtected().catch((e) => say(e.message));
  loadRequests().catch((e) => say(e.message));
  loadProfile().catch((e) => say(e.message));
  loadMentions().catch((e) => say(e.message));
  loadGroups().catch((e) => say(e.message));
  loadDeviceSwitches(false).catch((e) => say(e.message));
  showOwnAvatar();
  watchEngineEvents();
  loadTrending().catch((e) => say(e.message));
  loadTimeline(false).then(live).catch((e) => say(e.message));
}

function signedOut() {
  if (liveAbort) liveAbort.abort();
  liveAbort = null;
  session.clear();
  endReply();
  displayNames.clear();
  originals.clear();
  $("timeline").replaceChildren();
  $("mentions").replaceChildren();
  forgetThreadsGroupsAvatarsTexts();
  $("app").hidden = true;
  $("whoami").hidden = true;
  $("auth").hidden = false;
}

async function authenticate(path) {
  const username = $("username").value.trim();
  const password = $("password").value;
  try {
    const data = await api("POST", path, { username, password });
    session.save(data.token, data.user);
    $("password").value = "";
    say(path.endsWith("signup") ? "Welcome, @" + data.user.username + "!" : "", true);
    signedIn();
  } catch (error) {
    say(error.message);
  }
}

async function deletePost(id) {
  try {
    await api("DELETE", "/api/posts/" + id);
    removePost(id);
  } catch (error) {
    say(error.message);
  }
}

async function changeFollow(method) {
  const name = $("follow-name").value.trim();
  try {
    const user = await api("GET", "/api/users/by-name/" + encodeURIComponent(name));
    const me = session.user;
    const edge = await api(method, `/api/users/${me.id}/following/${user.id}`);
    $("follow-name").value = "";
    await Promise.all([refreshMe(), loadTimeline(false), loadDeviceSwitches(false)]);
    const done = edge.requested ? "Requested to follow @"
      : method === "PUT" ? "Following @" : "Unfollowed @";
    say(done + user.username, true);
  } catch (error) {
    say(error.message);
  }
}

async function loadProtected() {
  const data = await api("GET", "/api/me/protected");
  $("protected").checked = data.protected;
}

async function setProtected() {
  const on = $("protected").checked;
  try {
    await api(on ? "PUT" : "DELETE", "/api/me/protected");
    say(on ? "Your account is protected." : "Your account is public.", true);
    await Promise.all([loadRequests(), refreshMe()]);
  } catch (error) {
    $("protected").checked = !on;
    say(error.message);
  }
}

// The export needs the token, so a plain link cannot fetch it: the page
// fetches it and hands the browser the document as a download.
async function exportData() {
  try {
    const response = await fetch("/api/me/export", {
      headers: { Authorization: "Bearer " + session.token },
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      if (response.status === 401) signedOut();
      throw new Error(data.error || response.statusText);
    }
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = /filename="([^"]+)"/.exec(disposition);
    const blob = await response.blob();
    const doc = JSON.parse(await blob.text());
    const link = $("export-link");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = named ? named[1] : "starling-export.json";
    link.click();
    say(`Exported ${doc.posts.length} posts, ${doc.likes.length} likes and ` +
      `${doc.conversations.length} conversations to ${link.download}`, true);
  } catch (error) {
    say("Export failed: " + error.message);
  }
}

async function loadRequests() {
  const data = await api("GET", "/api/follow-requests?limit=50");
  const items = data.users.map((user) => {
    const li = document.createElement("li");
    li.dataset.user = user.id;
    const name = document.createElement("span");
    name.textContent = "@" + user.username;
    li.append(name);
    for (const [verb, label] of [["approve", "Approve"], ["deny", "Deny"]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = verb;
      button.textContent = label;
      button.addEventListener("click", () => answerRequest(user, verb));
      li.append(button);
    }
    return li;
  });
  $("requests").replaceChildren(...items);
}

async function answerRequest(user, verb) {
  try {
    await api("POST", `/api/follow-requests/${user.id}/${verb}`);
    say((verb === "approve" ? "Approved @" : "Denied @") + user.username, true);
    await Promise.all([loadRequests(), refreshMe()]);
  } catch (error) {
    say(error.message);
  }
}

async function loadConversations() {
  const data = await api("GET", "/api/conversations");
  const items = data.conversations.map((c) => {
    const li = document.createElement("li");
    li.dataset.user = String(c.with.id);
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open-conversation";
    open.textContent = "@" + c.with.username + (c.unread ? " (" + c.unread + " unread)" : "");
    open.addEventListener("click", () => openConversation(c.with).catch((e) => say(e.message)));
    li.append(open);
    return li;
  });
  $("conversations").replaceChildren(...items);
}

async function sendMessage() {
  const name = $("dm-name").value.trim();
  try {
    const user = await api("GET", "/api/users/by-name/" + encodeURIComponent(name));
    await api("POST", "/api/messages/" + user.id, { text: $("dm-text").value });
    $("dm-text").value = "";
    say("Message sent to @" + user.username, true);
    if (conversationWith && conversationWith.id === user.id) await openConversation(user);
    await loadConversations();
  } catch (error) {
    say(error.status === 403 ? "@" + name + " does not take your messages." : error.message);
  }
}

function showPhone(settings) {
  const pending = settings.pending_phone;
  if (settings.phone) {
    $("phone-state").textContent = "Linked: " + settings.phone;
  } else {
    $("phone-state").textContent = pending ? "" : "No phone linked.";
  }
  $("code-form").hidden = !pending;
  if (pending) {
    $("phone-state").textContent = (settings.phone ? "Linked: " + settings.phone + ". " : "")
      + "Waiting for the code texted to " + pending.phone + ".";
  }
}

async function loadPhone() {
  showPhone(await api("GET", "/api/me/settings"));
}

async function linkPhone() {
  try {
    const settings = await api("PUT", "/api/me/phone", { phone: $("phone-number").value.trim() });
    showPhone(settings);
    if (settings.pending_phone) {
      say("We texted a code to " + settings.pending_phone.phone + ". Enter it below, or text it back.", true);
      $("phone-code").focus();
    } else {
      say("That phone is linked already.", true);
    }
  } catch (error) {
    say(error.message);
  }
}

async function confirmPhone() {
  try {
    const settings = await api("POST", "/api/me/phone/confirm", { code: $("phone-code").value.trim() });
    $("phone-code").value = "";
    showPhone(settings);
    say("Phone linked: " + settings.phone, true);
  } catch (error) {
    say(error.message);
    await loadPhone().catch(() => {});
  }
}

async function unlinkPhone() {
  try {
    await api("DELETE", "/api/me/phone");
    await loadPhone();
    say("Phone unlinked.", true);
  } catch (error) {
    say(error.message);
  }
}

// Posts: display names, reposts, replies and mentions.

// Display names by user id (a promise each, asked for once per session).
const displayNames = new Map();
// The originals of reposts, by post id (from the pages' `reposted`).
const originals = new Map();
// The post being replied to, if any.
let replyTo = null;

function displayNameOf(userId) {
  let name = displayNames.get(userId);
  if (!name) {
    name = api("GET", `/api/users/${userId}/profile`)
      .then((profile) => profile.display_name)
      .catch(() => "");
    displayNames.set(userId, name);
  }
  return name;
}

function displayNameSpan(author) {
  const span = document.createElement("span");
  span.className = "display-name";
  span.dataset.user = String(author.id);
  displayNameOf(author.id).then((name) => { span.textContent = name; });
  return span;
}

function rememberOriginals(page) {
  for (const original of page.reposted || []) originals.set(original.id, original);
}

// What a post shows: itself, or for a repost its original. An original
// not known yet is fetched, and the post drawn again once it is.
function shownPost(post, li, fresh) {
  if (!post.repost_of) return post;
  const original = originals.get(post.repost_of);
  if (original) return original;
  api("GET", "/api/posts/" + post.repost_of)
    .then((found) => {
      originals.set(found.id, found);
      if (li.isConnected) li.replaceWith(renderPost(post, fresh));
    })
    .catch(() => {
      const text = li.querySelector(".text");
      if (text) text.textContent = "(the original post is no longer visible)";
    });
  return { ...post, text: "…" };
}

function postNotes(post, shown) {
  const notes = [];
  if (post.repost_of) {
    const note = document.createElement("p");
    note.className = "repost-note";
    note.textContent = "🔁 @" + post.author.username + " reposted";
    notes.push(note);
  }
  if (shown.reply_to) {
    const note = document.createElement("p");
    note.className = "reply-note";
    note.textContent = "↪ a reply";
    notes.push(note);
  }
  if (shown.group) notes.push(groupNote(shown));
  return notes;
}

function replyButton(post) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "reply";
  button.textContent = "Reply";
  button.addEventListener("click", () => startReply(post));
  return button;
}

function repostButton(post) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "repost";
  button.textContent = "Repost";
  button.addEventListener("click", () => repost(post));
  return button;
}

function startReply(post) {
  replyTo = post.id;
  $("reply-name").textContent = "@" + post.author.username;
  $("reply-to").hidden = false;
  const me = session.user;
  const mention = "@" + post.author.username + " ";
  const text = $("post-text");
  if (!(me && post.author.id === me.id) && !text.value.startsWith(mention)) {
    text.value = mention + text.value;
  }
  $("post-left").textContent = String(280 - [...text.value].length);
  text.focus();
}

function endReply() {
  replyTo = null;
  $("reply-to").hidden = true;
  $("reply-name").textContent = "";
}

async function repost(post) {
  try {
    const made = await api("POST", `/api/posts/${post.id}/repost`);
    originals.set(post.id, post);
    insertPost(made, false);
    say("Reposted @" + post.author.username, true);
  } catch (error) {
    say(error.status === 403 ? "This post cannot be reposted." : error.message);
  }
}

// Hashtags: the server's syntax (`#`, then 1 to 50 letters, digits or
// underscores, not all digits, not right after a letter, digit, `_`, `&`
// or `#`); each becomes a link to its tag page.
const TAG = /(^|[^\p{L}\p{N}_&#])#([\p{L}\p{N}_]{1,50})(?![\p{L}\p{N}_])/gu;

function withTagLinks(text) {
  const parts = [];
  let at = 0;
  for (const m of text.matchAll(TAG)) {
    const tag = m[2];
    if (/^\p{N}+$/u.test(tag)) continue;
    const start = m.index + m[1].length;
    if (start > at) parts.push(document.createTextNode(text.slice(at, start)));
    parts.push(tagLink(tag.toLowerCase(), "#" + tag));
    at = start + 1 + tag.length;
  }
  if (at < text.length) parts.push(document.createTextNode(text.slice(at)));
  return parts;
}

function tagLink(tag, label) {
  const a = document.createElement("a");
  a.href = "#";
  a.className = "tag";
  a.textContent = label;
  a.addEventListener("click", (event) => {
    event.preventDefault();
    loadTag(tag).catch((e) => say(e.message));
  });
  return a;
}

async function loadTag(tag) {
  const page = await api("GET", `/api/tags/${encodeURIComponent(tag)}?limit=20`);
  rememberOriginals(page);
  $("tag-name").textContent = "#" + tag;
  $("tag-section").hidden = false;
  $("tag-posts").replaceChildren(...page.posts.map((post) => renderPost(post, false)));
}

async function loadTrending() {
  const body = await api("GET", "/api/tags/trending");
  $("trending").replaceChildren(...body.tags.map((t) => {
    const li = document.createElement("li");
    const count = document.createElement("span");
    count.textContent = " " + t.posts;
    li.append(tagLink(t.tag, "#" + t.tag), count);
    return li;
  }));
}

async function loadMentions() {
  const page = await api("GET", "/api/mentions?limit=20");
  rememberOriginals(page);
  $("mentions").replaceChildren(...page.posts.map((post) => renderPost(post, false)));
}

// Profile: display name and bio.

async function loadProfile() {
  const profile = await api("GET", `/api/users/${session.user.id}/profile`);
  $("display-name").value = profile.display_name;
  $("bio").value = profile.bio;
}

async function saveProfile() {
  try {
    const profile = await api("PUT", "/api/me/profile", {
      display_name: $("display-name").value,
      bio: $("bio").value,
    });
    const id = profile.user.id;
    displayNames.set(id, Promise.resolve(profile.display_name));
    for (const span of document.querySelectorAll(`.display-name[data-user="${id}"]`)) {
      span.textContent = profile.display_name;
    }
    say("Profile saved.", true);
  } catch (error) {
    say(error.message);
  }
}

// Blocking and muting the username typed in the follow form.

async function changeBlockOrMute(kind, method) {
  const name = $("follow-name").value.trim();
  try {
    const user = await api("GET", "/api/users/by-name/" + encodeURIComponent(name));
    const result = await api(method, `/api/${kind}/${user.id}`);
    await Promise.all([refreshMe(), loadTimeline(false), loadMentions()]);
    const verbs = kind === "blocks" ? ["Blocked @", "Unblocked @"] : ["Muted @", "Unmuted @"];
    const done = verbs[method === "PUT" ? 0 : 1] + user.username;
    say(result.changed ? done : done + " (already)", true);
  } catch (error) {
    say(error.message);
  }
}

// Threads: a post in context, its ancestors above it and its replies
// (oldest first) below.

// The post whose thread is shown, and the cursor of its next replies.
let threadOf = null;
let threadNext = null;

function threadButton(post) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "thread";
  button.textContent = "Thread";
  button.addEventListener("click", () => openThread(post.id).catch((e) => say(e.message)));
  return button;
}

async function openThread(id) {
  const data = await api("GET", `/api/posts/${id}/thread?limit=20`);
  threadOf = id;
  rememberOriginals(data.replies);
  $("thread-ancestors").replaceChildren(...data.ancestors.map((p) => renderPost(p, false)));
  $("thread-post").replaceChildren(renderPost(data.post, false));
  $("thread-replies").replaceChildren(...data.replies.posts.map((p) => renderPost(p, false)));
  threadNext = data.replies.next;
  $("thread-more").hidden = !threadNext;
  $("thread").hidden = false;
  $("thread").scrollIntoView();
}

async function moreReplies() {
  if (!threadOf || !threadNext) return;
  const query = new URLSearchParams({ limit: "20", cursor: threadNext });
  const data = await api("GET", `/api/posts/${threadOf}/thread?` + query);
  rememberOriginals(data.replies);
  $("thread-replies").append(...data.replies.posts.map((p) => renderPost(p, false)));
  threadNext = data.replies.next;
  $("thread-more").hidden = !threadNext;
}

// A reply just made to the post whose thread is shown joins its replies
// (when they are all shown: otherwise it comes with the last page).
function showInThread(post) {
  if (!threadOf || post.reply_to !== threadOf || threadNext) return;
  const list = $("thread-replies");
  if (!list.querySelector(`li[data-id="${post.id}"]`)) list.append(renderPost(post, false));
}

function closeThread() {
  threadOf = null;
  threadNext = null;
  $("thread").hidden = true;
  for (const id of ["thread-ancestors", "thread-post", "thread-replies"]) $(id).replaceChildren();
}

function setUpThreads() {
  $("thread-close").addEventListener("click", closeThread);
  $("thread-more").addEventListener("click", () => moreReplies().catch((e) => say(e.message)));
}

// Avatars: each author's picture beside their posts, or their initial when
// they have none. An <img> cannot send the token, so the page fetches each
// picture once per session (the browser revalidates it by its ETag) and
// shows it from a blob: URL.

// Object URLs of pictures (or null: none) by user id, a promise each.
const avatars = new Map();

function avatarOf(userId) {
  let found = avatars.get(userId);
  if (!found) {
    found = fetch(`/api/users/${userId}/avatar`, {
      headers: { Authorization: "Bearer " + session.token },
    })
      .then((response) => (response.ok ? response.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null))
      .catch(() => null);
    avatars.set(userId, found);
  }
  return found;
}

function avatarElement(author) {
  const span = document.createElement("span");
  span.className = "avatar";
  span.dataset.user = String(author.id);
  span.dataset.initial = (author.username || "?").slice(0, 1).toUpperCase();
  span.textContent = span.dataset.initial;
  avatarOf(author.id).then((url) => drawAvatar(span, url));
  return span;
}

function drawAvatar(span, url) {
  if (url) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "";
    span.replaceChildren(img);
  } else {
    span.replaceChildren(span.dataset.initial);
  }
}

// Fetches `userId`'s picture again and redraws it wherever it is shown.
async function refreshAvatar(userId) {
  const old = await avatars.get(userId);
  avatars.delete(userId);
  const url = await avatarOf(userId);
  for (const span of document.querySelectorAll(`.avatar[data-user="${userId}"]`)) {
    drawAvatar(span, url);
  }
  if (old) URL.revokeObjectURL(old);
}

function showOwnAvatar() {
  const me = session.user;
  $("avatar-preview").replaceChildren(avatarElement({ id: me.id, username: me.username }));
}

async function uploadAvatar() {
  const file = $("avatar-file").files[0];
  if (!file) return;
  try {
    const response = await fetch("/api/me/avatar", {
      method: "PUT",
      headers: {
        Authorization: "Bearer " + session.token,
        "Content-Type": file.type || "application/octet-stream",
      },
      body: file,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (response.status === 401) signedOut();
      throw new Error(data.error || response.statusText);
    }
    $("avatar-file").value = "";
    await refreshAvatar(session.user.id);
    say("Picture saved.", true);
  } catch (error) {
    say(error.message);
  }
}

async function removeAvatar() {
  try {
    await api("DELETE", "/api/me/avatar");
    await refreshAvatar(session.user.id);
    say("Picture removed.", true);
  } catch (error) {
    say(error.message);
  }
}

function setUpAvatar() {
  $("avatar-form").addEventListener("submit", (event) => {
    event.preventDefault();
    uploadAvatar();
  });
  $("avatar-remove").addEventListener("click", removeAvatar);
}

// Groups: the caller's own, each with its members (added and removed by
// username) and a box to post to it.

// The names of the caller's groups, by id (for the note on group posts).
const groupNames = new Map();

function groupNote(post) {
  const note = document.createElement("p");
  note.className = "group-note";
  const name = groupNames.get(post.group);
  note.textContent = name === undefined ? "👥 a group post" : "👥 to " + name;
  return note;
}

async function loadGroups() {
  const data = await api("GET", "/api/groups");
  groupNames.clear();
  for (const group of data.groups) groupNames.set(group.id, group.name);
  const items = await Promise.all(data.groups.map(groupItem));
  $("group-list").replaceChildren(...items);
}

function smallButton(label, className, type, onClick) {
  const button = document.createElement("button");
  button.type = type;
  button.className = className;
  button.textContent = label;
  if (onClick) button.addEventListener("click", onClick);
  return button;
}

async function groupItem(group) {
  const li = document.createElement("li");
  li.dataset.group = String(group.id);
  const head = document.createElement("div");
  head.className = "group-head";
  const name = document.createElement("strong");
  name.className = "group-name";
  name.textContent = group.name;
  head.append(name, smallButton("Delete group", "group-delete", "button", () => deleteGroup(group)));

  const members = document.createElement("ul");
  members.className = "members";

  const add = document.createElement("form");
  add.className = "group-add";
  const who = document.createElement("input");
  who.className = "member-name";
  who.placeholder = "username";
  who.maxLength = 15;
  who.pattern = "[A-Za-z0-9_]{1,15}";
  who.required = true;
  who.setAttribute("aria-label", "Add a member to " + group.name);
  const addRow = document.createElement("div");
  addRow.className = "buttons";
  addRow.append(who, smallButton("Add member", "member-add", "submit"));
  add.append(addRow);
  add.addEventListener("submit", (event) => {
    event.preventDefault();
    addMember(group, who, members);
  });

  const write = document.createElement("form");
  write.className = "group-post";
  const text = document.createElement("textarea");
  text.className = "group-text";
  text.rows = 2;
  text.maxLength = 280;
  text.required = true;
  text.setAttribute("aria-label", "Post to " + group.name);
  text.placeholder = "A post only " + group.name + " sees";
  const postRow = document.createElement("div");
  postRow.className = "buttons";
  postRow.append(smallButton("Post to group", "group-send", "submit"));
  write.append(text, postRow);
  write.addEventListener("submit", (event) => {
    event.preventDefault();
    postToGroup(group, text);
  });

  li.append(head, members, add, write);
  await loadMembers(group, members);
  return li;
}

async function loadMembers(group, list) {
  const items = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "200" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/api/groups/${group.id}/members?` + query);
    for (const user of page.users) {
      const li = document.createElement("li");
      li.dataset.user = String(user.id);
      const name = document.createElement("span");
      name.textContent = "@" + user.username;
      li.append(name, smallButton("Remove", "member-remove", "button",
        () => removeMember(group, user, list)));
      items.push(li);
    }
    cursor = page.next;
  } while (cursor);
  list.replaceChildren(...items);
}

async function createGroup() {
  try {
    const group = await api("POST", "/api/groups", { name: $("group-name").value });
    $("group-name").value = "";
    await loadGroups();
    say("Created the group " + group.name, true);
  } catch (error) {
    say(error.message);
  }
}

async function deleteGroup(group) {
  try {
    await api("DELETE", "/api/groups/" + group.id);
    await loadGroups();
    say("Deleted the group " + group.name, true);
  } catch (error) {
    say(error.message);
  }
}

async function addMember(group, input, list) {
  const name = input.value.trim();
  try {
    const user = await api("GET", "/api/users/by-name/" + encodeURIComponent(name));
    const result = await api("PUT", `/api/groups/${group.id}/members/${user.id}`);
    input.value = "";
    await loadMembers(group, list);
    const done = "Added @" + user.username + " to " + group.name;
    say(result.changed ? done : done + " (already)", true);
  } catch (error) {
    say(error.message);
  }
}

async function removeMember(group, user, list) {
  try {
    await api("DELETE", `/api/groups/${group.id}/members/${user.id}`);
    await loadMembers(group, list);
    say("Removed @" + user.username + " from " + group.name, true);
  } catch (error) {
    say(error.message);
  }
}

async function postToGroup(group, input) {
  try {
    const post = await api("POST", "/api/posts", { text: input.value, group: group.id });
    input.value = "";
    insertPost(post, false);
    say("Posted to " + group.name, true);
  } catch (error) {
    say(error.status === 429 ? "Slow down: too many posts." : error.message);
  }
}

function setUpGroups() {
  $("group-form").addEventListener("submit", (event) => {
    event.preventDefault();
    createGroup();
  });
}

// Texts to my phone: a switch per account followed.

let textsNext = null;
// The latest listing asked for, and a count bumped as a switch starts and
// ends: a listing read while a switch changed is read again, and only the
// latest listing is drawn (a slow one never undoes a newer switch).
let textsLatest = 0;
let textsSwitches = 0;

async function loadDeviceSwitches(more) {
  const ticket = ++textsLatest;
  const query = new URLSearchParams({ limit: "50" });
  if (more && textsNext) query.set("cursor", textsNext);
  let data;
  for (;;) {
    const switches = textsSwitches;
    data = await api("GET", "/api/me/device-updates?" + query);
    if (ticket !== textsLatest) return;
    if (switches === textsSwitches) break;
  }
  const items = data.following.map(({ user, device }) => {
    const li = document.createElement("li");
    li.dataset.user = String(user.id);
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "device";
    box.checked = device;
    box.addEventListener("change", () => setDeviceSwitch(user, box));
    label.append(box, document.createTextNode("Texts of @" + user.username));
    li.append(label);
    return li;
  });
  if (more) $("device-switches").append(...items);
  else $("device-switches").replaceChildren(...items);
  textsNext = data.next;
  $("texts-more").hidden = !textsNext;
}

async function setDeviceSwitch(user, box) {
  const on = box.checked;
  textsSwitches += 1;
  try {
    const path = `/api/users/${session.user.id}/following/${user.id}/device`;
    const result = await api(on ? "PUT" : "DELETE", path);
    box.checked = result.device;
    say((result.device ? "Texts on for @" : "Texts off for @") + user.username, true);
  } catch (error) {
    box.checked = !on;
    say(error.message);
  } finally {
    textsSwitches += 1;
  }
}

function setUpDeviceSwitches() {
  $("texts-refresh").addEventListener("click",
    () => loadDeviceSwitches(false).catch((e) => say(e.message)));
  $("texts-more").addEventListener("click",
    () => loadDeviceSwitches(true).catch((e) => say(e.message)));
}

// A conversation: the messages with one account, oldest at the top, with a
// reply box; read when opened, and updated live from the engine's events.

let conversationWith = null;
let conversationNext = null;
let eventsAbort = null;

function messageItem(message) {
  const li = document.createElement("li");
  li.dataset.id = message.id;
  const mine = message.from === session.user.id;
  li.className = mine ? "mine" : "theirs";
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("strong");
  who.textContent = mine ? "You" : "@" + conversationWith.username;
  const when = document.createElement("time");
  when.dateTime = new Date(message.created_at_ms).toISOString();
  when.textContent = new Date(message.created_at_ms).toLocaleString();
  meta.append(who, when);
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = message.text;
  li.append(meta, text);
  return li;
}

async function openConversation(user) {
  const data = await api("GET", `/api/messages/${user.id}?limit=50`);
  conversationWith = user;
  conversationNext = data.next;
  $("conversation-name").textContent = "@" + user.username;
  $("messages").replaceChildren(...data.messages.slice().reverse().map(messageItem));
  $("conversation-older").hidden = !conversationNext;
  $("conversation").hidden = false;
  await api("POST", `/api/messages/${user.id}/read`);
  await loadConversations();
}

async function olderMessages() {
  if (!conversationWith || !conversationNext) return;
  const query = new URLSearchParams({ limit: "50", cursor: conversationNext });
  const data = await api("GET", `/api/messages/${conversationWith.id}?` + query);
  $("messages").prepend(...data.messages.slice().reverse().map(messageItem));
  conversationNext = data.next;
  $("conversation-older").hidden = !conversationNext;
}

async function replyInConversation() {
  const user = conversationWith;
  if (!user) return;
  try {
    const message = await api("POST", "/api/messages/" + user.id, { text: $("conversation-text").value });
    $("conversation-text").value = "";
    if (!$("messages").querySelector(`li[data-id="${message.id}"]`)) {
      $("messages").append(messageItem(message));
    }
    await loadConversations();
  } catch (error) {
    say(error.status === 403 ? "@" + user.username + " does not take your messages." : error.message);
  }
}

function closeConversation() {
  conversationWith = null;
  conversationNext = null;
  $("conversation").hidden = true;
  $("messages").replaceChildren();
}

// Reads the engine's events (GET /api/events) for new messages, as the
// home stream is read, until logged out.
async function watchEngineEvents() {
  if (eventsAbort) eventsAbort.abort();
  const abort = new AbortController();
  eventsAbort = abort;
  while (!abort.signal.aborted && session.token) {
    try {
      const response = await fetch("/api/events", {
        headers: { Authorization: "Bearer " + session.token, Accept: "text/event-stream" },
        signal: abort.signal,
      });
      if (response.status === 401) return;
      if (!response.ok || !response.body) throw new Error("events refused: " + response.status);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          engineEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function engineEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (line.startsWith("event:")) type = value;
    else if (line.startsWith("data:")) data.push(value);
  }
  if (type !== "message" || data.length === 0) return;
  const event = JSON.parse(data.join("\n"));
  if (conversationWith && event.from === conversationWith.id) {
    openConversation(conversationWith).catch((e) => say(e.message));
  } else {
    loadConversations().catch((e) => say(e.message));
  }
}

function setUpConversation() {
  $("conversation-close").addEventListener("click", closeConversation);
  $("conversation-older").addEventListener("click", () => olderMessages().catch((e) => say(e.message)));
  $("conversation-form").addEventListener("submit", (event) => {
    event.preventDefault();
    replyInConversation();
  });
}

// Forgets what the sections above hold, at log-out.
function forgetThreadsGroupsAvatarsTexts() {
  if (eventsAbort) eventsAbort.abort();
  eventsAbort = null;
  closeThread();
  closeConversation();
  for (const found of avatars.values()) {
    found.then((url) => { if (url) URL.revokeObjectURL(url); });
  }
  avatars.clear();
  groupNames.clear();
  $("group-list").replaceChildren();
  $("device-switches").replaceChildren();
  $("avatar-preview").replaceChildren();
  textsNext = null;
}

function setUp() {
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    authenticate("/api/login");
  });
  $("signup").addEventListener("click", () => {
    if ($("auth-form").reportValidity()) authenticate("/api/signup");
  });
  $("logout").addEventListener("click", async () => {
    try { await api("POST", "/api/logout"); } catch (error) { /* gone already */ }
    signedOut();
    say("Logged out.", true);
  });
  $("delete-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("delete-confirm").hidden = false;
  });
  $("delete-no").addEventListener("click", () => {
    $("delete-confirm").hidden = true;
    $("delete-password").value = "";
  });
  $("delete-yes").addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/me", { password: $("delete-password").value });
      $("delete-confirm").hidden = true;
      $("delete-password").value = "";
      signedOut();
      say("Your account is deleted.", true);
    } catch (error) {
      $("delete-confirm").hidden = true;
      say(error.code === "wrong_password" ? "That is not your password." : error.message);
    }
  });
  $("post-text").addEventListener("input", () => {
    $("post-left").textContent = String(280 - [...$("post-text").value].length);
  });
  $("post-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = { text: $("post-text").value };
      if (replyTo) body.reply_to = replyTo;
      const post = await api("POST", "/api/posts", body);
      $("post-text").value = "";
      $("post-left").textContent = "280";
      endReply();
      insertPost(post, false);
      showInThread(post);
      say("");
    } catch (error) {
      say(error.status === 429 ? "Slow down: too many posts." : error.message);
    }
  });
  $("follow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    changeFollow("PUT");
  });
  $("unfollow").addEventListener("click", () => {
    if ($("follow-form").reportValidity()) changeFollow("DELETE");
  });
  for (const [id, kind, method] of [
    ["block", "blocks", "PUT"], ["unblock", "blocks", "DELETE"],
    ["mute", "mutes", "PUT"], ["unmute", "mutes", "DELETE"],
  ]) {
    $(id).addEventListener("click", () => {
      if ($("follow-form").reportValidity()) changeBlockOrMute(kind, method);
    });
  }
  $("reply-cancel").addEventListener("click", endReply);
  $("profile-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveProfile();
  });
  $("mentions-refresh").addEventListener("click", () => loadMentions().catch((e) => say(e.message)));
  $("trending-refresh").addEventListener("click", () => loadTrending().catch((e) => say(e.message)));
  $("protected").addEventListener("change", setProtected);
  $("export").addEventListener("click", exportData);
  $("requests-refresh").addEventListener("click", () => loadRequests().catch((e) => say(e.message)));
  $("more").addEventListener("click", () => loadTimeline(true).catch((e) => say(e.message)));
  $("dm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("phone-form").addEventListener("submit", (event) => {
    event.preventDefault();
    linkPhone();
  });
  $("phone-unlink").addEventListener("click", unlinkPhone);
  $("code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    confirmPhone();
  });
  setUpThreads();
  setUpAvatar();
  setUpGroups();
  setUpDeviceSwitches();
  setUpConversation();
  if (session.token) signedIn();
}

setUp();
