-- auditrun.paging: one iterator over every paging style the APIs use. The
-- catalogue says which style an endpoint has and where its rows and
-- cursors are; nothing here knows a vendor.
--
--   page    a page number (1, 2, ...): ends on an empty page, on a page
--           shorter than the page size, or once `total` rows are seen
--   offset  a row offset advanced by the rows received: ends on an empty
--           page or on one shorter than the longest before it (a server
--           may cap the page size below what was asked, and may report no
--           total); with ends_on_empty, on an empty page only (a server
--           that may send one page shorter than the others mid-walk)
--   cursor  an opaque link or token from the previous answer (the first
--           of the `next` fields present), passed back exactly as given
--
-- A server whose pages never end is stopped at max_pages with an error, not
-- followed forever. One that goes round (a page it sent before, pages that
-- alternate A, B, A, B, pages that shift and send rows again, a next link
-- it sent before) is stopped at the first such page by the one detector
-- every walk uses (repeats below), before any of that page's rows are
-- given out. An answer of the wrong shape (not an object, a list field
-- that is null, a string, a number) is an error too, never taken for "no
-- rows". Errors name the walk (vendor, endpoint, window) and the page.
-- Iterators raise error values; wrap the loop in pcall (or let the script
-- fail) to handle them.
local core = require("auditrun.core")
local errors = require("auditrun.errors")
local json = require("auditrun.json")
local time = require("auditrun.time")

local M = {}

M.MAX_PAGES = 100000
-- The detector of repeats remembers the digest of each of a walk's last
-- PAGES_REMEMBERED pages, and of each row of the page before.
M.PAGES_REMEMBERED = 10000

-- A short digest (64 bits of SHA-256) of a JSON text: a key of the sets below.
local function digest(text)
  return core.sha256(text):sub(1, 16)
end

--- repeats() -> check(rows, where) -> nil | the earlier page's `where`:
--- the one detector of a walk that goes round.
---
--- A page whose rows (as a whole) match a page seen before (pages that
--- alternate), or that holds a row of the page before it (pages that
--- shift), is a repeat: the answer names the page that had it first. Rows
--- are compared whole, so a row twice on one page, or the same row on
--- pages far apart (two users' identical permissions), is not a repeat.
--- Memory is bounded: one digest a page (PAGES_REMEMBERED pages) and one a
--- row of the page before.
function M.repeats()
  local pages, order, oldest = {}, {}, 1
  local before, before_where = {}, nil
  return function(list, where)
    if #list == 0 then return nil end
    -- Each row's digest of its values, in C (with the set of them, and
    -- whether one was a row of the page before); a row holding what C does
    -- not digest (a function) is digested from its JSON text here, marked
    -- so that it never meets a digest of the other kind.
    local keys, rows, missing, seen = core.json_digests(list, before)
    if missing > 0 then
      for i = 1, #list do
        if not keys[i] then
          keys[i] = digest("\0" .. json.encode(list[i]))
          rows[keys[i]] = true
          if before[keys[i]] then seen = true end
        end
      end
    end
    local whole = digest(table.concat(keys))
    if pages[whole] then return pages[whole] end
    if seen then return before_where end
    pages[whole] = where
    order[#order + 1] = whole
    if #order - oldest + 1 > M.PAGES_REMEMBERED then
      pages[order[oldest]], order[oldest] = nil, nil
      oldest = oldest + 1
    end
    before, before_where = rows, where
    return nil
  end
end

local function present(v)
  return v ~= nil and v ~= json.null and v ~= ""
end

--- rows_of(body, fields) -> the rows of a page body: the first of the
--- named fields that holds a table, or the body itself when it is a list.
function M.rows_of(body, fields)
  if type(body) ~= "table" then return {} end
  for _, f in ipairs(fields or {}) do
    local rows = body[f]
    if present(rows) then return type(rows) == "table" and rows or {} end
  end
  if body[1] ~= nil then return body end
  return {}
end

-- Why a page body cannot hold rows, or nil.
local function shape_error(body, fields)
  if type(body) ~= "table" then return "the answer is not a JSON object or list" end
  if body[1] ~= nil then return nil end
  local bad
  for _, f in ipairs(fields or {}) do
    local v = body[f]
    if type(v) == "table" then return nil end
    if v ~= nil and not bad then
      bad = string.format("'%s' is %s where a list belongs", f, v == json.null and "null" or ("a " .. type(v)))
    end
  end
  return bad
end

--- pages{style=, fetch=fn(cursor)->body|nil,err, rows={fields}, next={fields},
--- total=field, page_size=, first=, at=, max_pages=, name=, ends_on_empty=} ->
--- iterator over (page body, page number, where the next page starts).
---
--- The cursor is the page number ("page", first default 1), the row offset
--- ("offset", default 0) or the link from the previous page ("cursor", first
--- usually nil). Where the next page starts is a position ({page=, seen=},
--- {offset=, longest=} or {cursor=}: the cursor to send and what the walk
--- counted so far), or false after the last page; a walk given it as `at`
--- sends the same requests the walk it came from would have sent next.
function M.pages(o)
  local style, fetch = o.style, o.fetch
  assert(style == "page" or style == "offset" or style == "cursor", "unknown paging style")
  assert(style ~= "cursor" or o.next, "cursor paging needs the fields of the next cursor")
  local max_pages = o.max_pages or M.MAX_PAGES
  local page_size = o.page_size
  local n, seen_rows, longest, finished = 0, 0, 0, false
  local links, repeated = {}, M.repeats()
  local function fail(why)
    error(errors.new("paging", string.format("%s: %s", o.name or "paged answer", why)), 0)
  end
  -- A page as the API knows it: its number, its offset, or its place in the walk.
  local function where(cursor_sent)
    if style == "page" then return string.format("page %s", tostring(cursor_sent)) end
    if style == "offset" then return string.format("page %d (offset %s)", n, tostring(cursor_sent)) end
    return string.format("page %d", n)
  end
  local cursor = o.first
  if o.at then
    cursor = o.at[style]
    seen_rows, longest = math.tointeger(o.at.seen) or 0, math.tointeger(o.at.longest) or 0
  end
  if cursor == nil and style == "page" then cursor = 1 end
  if cursor == nil and style == "offset" then cursor = 0 end
  return function()
    if finished then return nil end
    n = n + 1
    if n > max_pages then
      fail(string.format("the server kept sending pages: stopped after %d", max_pages))
    end
    local sent = cursor
    local body, err = fetch(cursor)
    if body == nil then error(err, 0) end
    local bad = shape_error(body, o.rows)
    if bad then fail(string.format("%s: %s", where(sent), bad)) end
    local rows = M.rows_of(body, o.rows)
    local count = #rows
    -- A server that ignores the page asked for, or goes round, would be
    -- followed for ever (and its rows written again and again).
    local this = where(sent)
    local first = repeated(rows, this)
    if first then
      fail(string.format("%s repeats rows of %s (the service sent rows already read); stopped before writing it",
        this, first))
    end
    seen_rows = seen_rows + count
    if style == "page" then
      local total = o.total and math.tointeger(tonumber(type(body) == "table" and body[o.total] or nil))
      if count == 0 then return nil end
      if total and total > 0 then
        finished = seen_rows >= total
      elseif page_size and count < page_size then
        finished = true
      end
      cursor = cursor + 1
    elseif style == "offset" then
      if count == 0 then return nil end
      if count < longest and not o.ends_on_empty then finished = true end
      longest = math.max(longest, count)
      cursor = cursor + count
    else
      local nxt
      for _, f in ipairs(o.next) do
        if present(body[f]) then nxt = body[f] break end
      end
      if nxt ~= nil then
        -- A link seen before would loop for ever.
        local key = type(nxt) == "string" and digest(nxt) or nxt
        if links[key] then
          fail(string.format("%s: the server sent the same next page link as %s", this, links[key]))
        end
        links[key] = this
        cursor = nxt
      else
        finished = true
      end
    end
    if finished then return body, n, false end
    if style == "page" then return body, n, { page = cursor, seen = seen_rows } end
    if style == "offset" then return body, n, { offset = cursor, longest = longest } end
    return body, n, { cursor = cursor }
  end
end

-- ---- a walk of nested levels, and its resume token ----------------------------------

M.TOKEN = "auditrun-walk/1"

-- A token this walk cannot continue from: refused before anything is sent.
local function refuse(why)
  error(errors.new("usage", why, { resume_token = true }), 0)
end

local function given(v)
  if v == json.null then return nil end
  return v
end

-- The token a walk starts from: its own, an earlier cursor o.old reads as
-- one, or nil for a walk from the start.
local function read_token(saved, o)
  saved = given(saved)
  if saved == nil then return nil end
  if type(saved) == "table" and saved.walk == M.TOKEN then return saved end
  local t = type(saved) == "table" and o.old and o.old(saved)
  if not t then refuse("its place to resume from is of a shape this walk does not know") end
  t.walk = M.TOKEN
  return t
end

-- The token's `at` checked against the walk's levels: one item number
-- (1, 2, ...) a list level, then at most one page position.
local function read_at(t, lists)
  local at = t and given(t.at) or {}
  if type(at) ~= "table" or #at > lists + 1 then refuse("its place to resume from has other levels than this walk") end
  for k = 1, math.min(#at, lists) do
    local n = math.tointeger(at[k])
    if not n or n < 1 then refuse("its place to resume from names no item of level " .. k) end
    at[k] = n
  end
  local page = at[lists + 1]
  if page ~= nil and not (type(page) == "table" and (page.page or page.offset or page.cursor) ~= nil) then
    refuse("its place to resume from names no page")
  end
  return at
end

-- The range of a walk that has one: the one its token was started with,
-- which the ends the user gave must match.
local function read_range(t, r)
  if not t then return { from = r.from, to = r.to } end
  local saved = type(t.range) == "table" and t.range or {}
  local from, to = tonumber(given(saved.from)), tonumber(given(saved.to))
  local asked = r.given or {}
  if (asked.from and asked.from ~= from) or (asked.to and asked.to ~= to) then
    error(errors.new("usage", string.format("the output was started for %s to %s: give that range again, "
      .. "or another --out", from and time.iso(from) or "the beginning", to and time.iso(to) or "the moment it "
      .. "started")), 0)
  end
  return { from = from, to = to }
end

--- walk{levels={...} | start=function(walk) -> levels, range=, old=} ->
--- pages(token[, warn, coverage]): a walk of nested levels that can stop
--- after any page and be continued from a token, for workflow.records.
---
--- The levels, outermost first, are lists (windows of time, queries,
--- sites) and, last, the paged request each combination of their items
--- makes. A list level is {items = a list, or function(outer items...) ->
--- a list or an iterator over items; take = function(item) -> the value
--- walked (called only for items walked, not for those a resumed walk
--- passes by)}. The page level is {pages = function(items..., at) -> an
--- iterator over (page, _, where the next page starts) as pages() gives
--- them, started at `at` (a position from the token, or nil for the first
--- page); rows = function(page, items...) -> the page's rows (default: the
--- page is its rows); restart = true: a resumed walk starts the item from
--- its first page (a link the service gave may not be valid later)}.
---
--- The iterator gives (rows, token after them, or nil when a rerun cannot
--- start there). A token is plain JSON data, built here alone:
---   {walk = "auditrun-walk/1", at = {3, {page = 5, seen = 800}},
---    range = {from=, to=}, carry = {name = value}}
--- `at` is where the next page starts: the item number of each list level
--- (a missing one: 1), then the page position pages() gave (missing: the
--- item's first page). After an item's last page the token names the next
--- item; with restart, that is the only token its pages give. range (the
--- option range = {from=, to=, given={from=, to=}}) is the range the walk
--- was started with, which a resumed walk reads again, refusing ends given
--- that differ. carry holds what the walk's functions keep across pages:
--- start(walk) reads walk.carried[name] and sets walk.carry[name] =
--- function() -> the JSON value to keep. walk.range, walk.warn and
--- walk.coverage are there for start too.
---
--- A token of another shape is given to old(cursor) -> a token or nil (the
--- cursors of an earlier version); one that does not fit the walk is
--- refused (a usage error with field resume_token) before anything is sent.
function M.walk(o)
  return function(saved, warn, cov)
    local t = read_token(saved, o)
    local w = { carried = t and type(t.carry) == "table" and t.carry or {}, carry = {}, warn = warn, coverage = cov }
    local range = o.range and read_range(t, o.range)
    w.range = range
    local levels = o.levels or o.start(w)
    local lists, leaf = #levels - 1, levels[#levels]
    local at = read_at(t, lists)
    local resuming = t ~= nil
    local item, pos, iter, done = {}, {}, {}, {}
    local function open(k)
      local src = levels[k].items
      if type(src) == "function" then src = src(table.unpack(item, 1, k - 1)) end
      if type(src) == "table" then
        local list, i = src, 0
        src = function()
          i = i + 1
          return list[i]
        end
      end
      iter[k], pos[k], done[k] = src, 0, false
      -- A resumed walk passes by the items before the token's.
      local skip = resuming and at[k] and at[k] - 1 or 0
      while pos[k] < skip do
        if iter[k]() == nil then
          done[k] = true
          break
        end
        pos[k] = pos[k] + 1
      end
    end
    local function advance(k)
      if done[k] then return false end
      local v = iter[k]()
      if v == nil then
        done[k] = true
        return false
      end
      pos[k] = pos[k] + 1
      item[k] = levels[k].take and levels[k].take(v) or v
      return true
    end
    -- The next combination of items; false when every list is walked.
    local started = false
    local function next_leaf()
      local k = lists
      if not started then
        started = true
        if lists == 0 then return true end
        open(1)
        k = 1
      elseif lists == 0 then
        return false
      end
      while k >= 1 do
        if advance(k) then
          if k == lists then return true end
          k = k + 1
          open(k)
        else
          resuming = false
          k = k - 1
        end
      end
      return false
    end
    local function token(page_at)
      local out = { walk = M.TOKEN, range = range, at = table.move(pos, 1, lists, 1, {}) }
      out.at[lists + 1] = page_at
      local carry = {}
      for name, f in pairs(w.carry) do carry[name] = f() end
      if next(carry) ~= nil then out.carry = carry end
      return out
    end
    -- After an item's last page: the next item of the innermost list.
    local function after_item()
      if lists == 0 then return nil end
      local out = token(nil)
      out.at[lists] = pos[lists] + 1
      return out
    end
    local pages
    return function()
      while true do
        if pages then
          local page, _, after = pages()
          if page ~= nil then
            local rows = page
            if leaf.rows then
              local args = table.move(item, 1, lists, 2, { page })
              rows = leaf.rows(table.unpack(args, 1, lists + 1))
            end
            if leaf.restart or after == nil then return rows, nil end
            if after then return rows, token(after) end
            -- The last page: its walk ends without a request (telling its
            -- coverage so) before the token names the next item.
            pages()
            pages = nil
            return rows, after_item()
          end
          pages = nil
          local out = after_item()
          if out then return {}, out end
        end
        if not next_leaf() then return nil end
        -- The token's page position, when the walk reached the token's items.
        local page_at
        if resuming then
          page_at = at[lists + 1]
          for k = 1, lists do
            if pos[k] ~= (at[k] or 1) then page_at = nil end
          end
        end
        resuming = false
        local args = table.move(item, 1, lists, 1, {})
        args[lists + 1] = page_at
        pages = leaf.pages(table.unpack(args, 1, lists + 1))
      end
    end
  end
end

--- each_row(next_page, fields) -> iterator over the rows of the pages an
--- iterator from pages() gives.
function M.each_row(next_page, fields)
  local rows, i = {}, 0
  return function()
    while true do
      i = i + 1
      if rows[i] ~= nil then return rows[i] end
      local body = next_page()
      if body == nil then return nil end
      rows, i = M.rows_of(body, fields), 0
    end
  end
end

return M
