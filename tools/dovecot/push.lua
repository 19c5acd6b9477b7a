-- push.lua: Dovecot 2.3 push_notification Lua driver -> one HTTP POST (JSON) per mail
-- transaction to pimapd's store-event intake (--store-events-listen). Wire format:
-- docs/store-events.md. Adapted from the verified script of shared/dev/dovecot-push.md §3.
--
-- Needs the Debian packages lua-socket and lua-dkjson (Lua 5.4 modules; Dovecot links
-- liblua5.4) and mail_lua + push_notification + push_notification_lua in the GLOBAL
-- mail_plugins (tools/dovecot/push.conf.in).
--
-- Runs synchronously inside the mail process (lmtp/imap) right after the transaction
-- commits and BEFORE the LMTP 250 / IMAP tagged OK: a slow receiver stalls delivery, so
-- keep push_lua_timeout short. A failed POST is logged and dropped (no retry: the gateway
-- may already have it, and it reconciles from the store on gaps).
--
-- Plugin settings (user:plugin_getenv, so they may also come per user from userdb):
--   push_lua_url      http://127.0.0.1:PORT/dovecot (required; nothing is sent without it)
--   push_lua_secret   sent as "X-Pimap-Secret: <secret>" when non-empty (pimapd requires it
--                     unless it runs with --store-events-insecure)
--   push_lua_timeout  seconds per socket operation (connect, send, receive); default 0.2
--   push_lua_status   "yes": add per-mailbox uidvalidity/uidnext/messages/unseen/highestmodseq
--   push_lua_wait     "no": fire-and-forget (never blocks on the answer; losses go unnoticed)
--   push_lua_events   space-separated event names to send (default: all)

local http   = require("socket.http")
local ltn12  = require("ltn12")
local socket = require("socket")
local json   = require("dkjson")

local function int(x)            -- the driver pushes numbers as Lua floats
  if type(x) == "number" then return math.tointeger(x) or x end
  return x
end

local function arr(t)            -- encode as a JSON array even when empty
  return setmetatable(t or {}, { __jsontype = "array" })
end

local STRING_FIELDS = { "from", "to", "subject", "snippet", "message_id", "from_address",
                        "from_display_name", "to_address", "to_display_name" }

function dovecot_lua_notify_begin_txn(user)
  local filter = nil
  local names = user:plugin_getenv("push_lua_events")
  if names ~= nil and names ~= "" then
    filter = {}
    for name in names:gmatch("%S+") do filter[name] = true end
  end
  local url = user:plugin_getenv("push_lua_url")
  if url == "" then url = nil end
  local secret = user:plugin_getenv("push_lua_secret")
  if secret == "" then secret = nil end
  return { user = user,
           url = url,
           secret = secret,
           timeout = tonumber(user:plugin_getenv("push_lua_timeout") or "") or 0.2,
           want_status = (user:plugin_getenv("push_lua_status") == "yes"),
           wait = (user:plugin_getenv("push_lua_wait") ~= "no"),
           filter = filter, events = {}, boxes = {} }
end

local function add_event(ctx, ev)
  if ctx.filter ~= nil and not ctx.filter[ev.name] then return end
  local e = { event = ev.name, mailbox = ev.mailbox }
  if ev.uid ~= nil then
    e.uid = int(ev.uid)
    e.uidvalidity = int(ev.uid_validity)
    ctx.boxes[ev.mailbox] = true
  end
  if ev.mailbox_old ~= nil then e.mailbox_old = ev.mailbox_old end
  if ev.flags ~= nil then e.flags = arr(ev.flags) end
  if ev.flags_old ~= nil then e.flags_old = arr(ev.flags_old) end
  if ev.keywords ~= nil then e.keywords = arr(ev.keywords) end
  if ev.keywords_old ~= nil then e.keywords_old = arr(ev.keywords_old) end
  for _, k in ipairs(STRING_FIELDS) do
    if ev[k] ~= nil and ev[k] ~= "" then e[k] = ev[k] end
  end
  if ev.date ~= nil then e.date = int(ev.date); e.tz = int(ev.tz) end
  table.insert(ctx.events, e)
end

-- The driver subscribes only to events whose handler exists, and calls begin/end_txn only
-- if at least one exists. Define all 12 (RFC 5423 names: MessageNew -> ..._message_new).
for _, n in ipairs({ "message_new", "message_append", "message_expunge", "message_read",
                     "message_trash", "flags_set", "flags_clear", "mailbox_create",
                     "mailbox_delete", "mailbox_rename", "mailbox_subscribe",
                     "mailbox_unsubscribe" }) do
  _G["dovecot_lua_notify_event_" .. n] = add_event
end

local function mailbox_status(user, name)
  local S = dovecot.storage
  local box = user:mailbox(name)
  local ok, st = pcall(function()
    box:sync()
    return box:status(S.STATUS_UIDVALIDITY, S.STATUS_UIDNEXT, S.STATUS_MESSAGES,
                      S.STATUS_UNSEEN, S.STATUS_HIGHESTMODSEQ)
  end)
  box:free()
  if not ok then
    dovecot.i_error("push-lua: status(" .. name .. ") failed: " .. tostring(st))
    return nil
  end
  return { uidvalidity = int(st.uidvalidity), uidnext = int(st.uidnext),
           messages = int(st.messages), unseen = int(st.unseen),
           highestmodseq = int(st.highest_modseq) }
end

-- Ordinary POST: waits for the status line (bounded by timeout per socket operation).
local function post_wait(ctx, payload)
  http.TIMEOUT = ctx.timeout
  local headers = { ["content-type"] = "application/json",
                    ["content-length"] = tostring(#payload) }
  if ctx.secret ~= nil then headers["x-pimap-secret"] = ctx.secret end
  return http.request{ url = ctx.url, method = "POST",
                       source = ltn12.source.string(payload),
                       headers = headers, sink = ltn12.sink.null() }
end

-- Fire-and-forget POST: blocks only in connect() (and send() if the peer's buffers are full);
-- the reply is never read, so a slow or failing receiver is invisible here.
local function post_nowait(ctx, payload)
  local host, port, path = ctx.url:match("^http://([^:/]+):?(%d*)(.*)$")
  if host == nil then return nil, "bad url " .. ctx.url end
  if path == "" then path = "/" end
  local c = socket.tcp()
  c:settimeout(ctx.timeout)
  local ok, err = c:connect(host, tonumber(port) or 80)
  if ok then
    local secret = ""
    if ctx.secret ~= nil then secret = "X-Pimap-Secret: " .. ctx.secret .. "\r\n" end
    ok, err = c:send("POST " .. path .. " HTTP/1.1\r\nHost: " .. host ..
                     "\r\nContent-Type: application/json\r\nContent-Length: " .. #payload ..
                     "\r\n" .. secret .. "Connection: close\r\n\r\n" .. payload)
    c:shutdown("send")
  end
  c:close()
  if not ok then return nil, err end
  return 1, 202
end

function dovecot_lua_notify_end_txn(ctx, success)
  if not success or #ctx.events == 0 or ctx.url == nil then return end
  local body = { user = ctx.user.username, service = ctx.user.service,
                 session = ctx.user.session_id, events = ctx.events }
  if ctx.want_status and next(ctx.boxes) ~= nil then
    body.status = setmetatable({}, { __jsontype = "object" })
    for name, _ in pairs(ctx.boxes) do body.status[name] = mailbox_status(ctx.user, name) end
  end
  body.ts = socket.gettime()
  local payload = json.encode(body)
  local ok, code
  if ctx.wait then
    ok, code = post_wait(ctx, payload)
  else
    ok, code = post_nowait(ctx, payload)
  end
  if ok == nil then
    dovecot.i_error("push-lua: POST " .. ctx.url .. " failed: " .. tostring(code) ..
                    " (" .. #ctx.events .. " events dropped)")
  elseif code < 200 or code > 299 then
    dovecot.i_error("push-lua: POST " .. ctx.url .. " returned " .. tostring(code) ..
                    " (" .. #ctx.events .. " events dropped)")
  end
end
