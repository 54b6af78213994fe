-- auditrun.paging: one iterator over every paging style the APIs use. The
-- catalogue says which style an endpoint has and where its rows and
-- cursors are; nothing here knows a vendor.
--
--   page    a page number (1, 2, ...): ends on an empty page, on a page
--           shorter than the page size, or once `total` rows are seen
--   offset  a row offset advanced by the rows received: ends on an empty
--           page or on one shorter than the longest before it (a server
--           may cap the page size below what was asked, and may report no
--           total)
--   cursor  an opaque link or token from the previous answer (the first
--           of the `next` fields present), passed back exactly as given
--
-- A server whose pages never end is stopped at max_pages with an error, not
-- followed forever; one that sends the same page again, or an answer of the
-- wrong shape (not an object, a list field that is null, a string, a
-- number), is an error naming the endpoint, never taken for "no rows".
-- Iterators raise error values; wrap the loop in pcall (or let the script
-- fail) to handle them.
local cjson = require "cjson"
local errors = require "auditrun.errors"
local http = require "auditrun.http"

local M = {}

M.MAX_PAGES = 100000

local function present(v)
  return v ~= nil and v ~= http.null and v ~= ""
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
      bad = string.format("'%s' is %s where a list belongs", f, v == http.null and "null" or ("a " .. type(v)))
    end
  end
  return bad
end

--- pages{style=, fetch=fn(cursor)->body|nil,err, rows={fields}, next={fields},
--- total=field, page_size=, first=, max_pages=, name=} -> iterator over (page
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
  local seen, previous = {}, nil
  local function fail(why)
    error(errors.new("paging", string.format("%s: %s", o.name or "paged answer", why)), 0)
  end
  local cursor = o.first
  if cursor == nil and style == "page" then cursor = 1 end
  if cursor == nil and style == "offset" then cursor = 0 end
  return function()
    if finished then return nil end
    n = n + 1
    if n > max_pages then
      error(errors.new("paging", string.format("the server kept sending pages: stopped after %d", max_pages)), 0)
    end
    local body, err = fetch(cursor)
    if body == nil then error(err, 0) end
    local bad = shape_error(body, o.rows)
    if bad then fail(string.format("page %d: %s", n, bad)) end
    local rows = M.rows_of(body, o.rows)
    local count = #rows
    if style ~= "cursor" and count > 0 then
      -- A server that ignores the page asked for would be followed for ever.
      local this = cjson.encode(rows)
      if this == previous then fail(string.format("page %d is the same as the page before it", n)) end
      previous = this
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
      if count < longest then finished = true end
      longest = math.max(longest, count)
      cursor = cursor + count
    else
      local nxt
      for _, f in ipairs(o.next) do
        if present(body[f]) then nxt = body[f] break end
      end
      if nxt ~= nil then
        -- A link seen before would loop for ever.
        if seen[nxt] then
          error(errors.new("paging", "the server sent the same next page twice"), 0)
        end
        seen[nxt] = true
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
