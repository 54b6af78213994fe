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
local core = require "auditrun.core"
local errors = require "auditrun.errors"
local json = require "auditrun.json"

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
--- the one detector of a walk that goes round. A page whose rows (as a
--- whole) match a page seen before (pages that alternate), or that holds
--- a row of the page before it (pages that shift), is a repeat: the answer
--- names the page that had it first. Rows are compared whole, so a row
--- twice on one page, or the same row on pages far apart (two users'
--- identical permissions), is not a repeat. Memory is bounded: one digest
--- a page (PAGES_REMEMBERED pages) and one a row of the page before.
function M.repeats()
  local pages, order, oldest = {}, {}, 1
  local before, before_where = {}, nil
  return function(list, where)
    if #list == 0 then return nil end
    -- Each row's digest of its JSON text, in C (with the set of them, and
    -- whether one was a row of the page before); a row that only
    -- lua-cjson writes (a NaN) is digested from its text here, marked so
    -- that it never meets a digest of the other kind.
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
--- total=field, page_size=, first=, max_pages=, name=, ends_on_empty=} -> iterator over (page
--- body, page number). The cursor is the page number ("page", first
--- default 1), the row offset ("offset", default 0) or the link from the
--- previous page ("cursor", first usually nil).
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
    return body, n
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
