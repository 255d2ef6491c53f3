// The Starling web page: sign up or log in, post, reply, repost, like,
// follow, block and mute by username (a protected account gets a follow
// request), edit one's display name and bio, protect one's own account and
// answer follow requests, read the posts mentioning one, send direct
// messages, link a phone (asking for the code texted to it), download
// everything one has (the export), and watch the home timeline update
// live, each post with its author's display name.
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
  meta.append(displayNameSpan(shown.author), who, when);
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
  actions.append(like, replyButton(shown), repostButton(shown));
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
    await Promise.all([refreshMe(), loadTimeline(false)]);
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
    li.textContent = "@" + c.with.username + (c.unread ? " (" + c.unread + " unread)" : "");
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
  if (session.token) signedIn();
}

setUp();
