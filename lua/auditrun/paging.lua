-- auditrun.paging: one iterator over every paging style the APIs use.
--
--   page      startPage/pageSize (or StartPage/PageSize): ends on a short or
--             empty page
--   nextlink  an opaque nextLink passed back exactly as given
--   token     the legacy Token/nextToken pair
--
-- Rows come under `values` or `results` (the documents use both). A server
-- whose pages never end is stopped at max_pages with an error, not followed
-- forever. Iterators raise error values; wrap the loop in pcall (or let the
-- script fail) to handle them.
local errors = require "auditrun.errors"
local http = require "auditrun.http"

local M = {}

M.MAX_PAGES = 100000

--- The rows of a page body: body.values, body.results, or the body itself
--- when it is a list.
function M.rows_of(body)
  if type(body) ~= "table" then return {} end
  local rows = body.values
  if rows == nil or rows == http.null then rows = body.results end
  if rows == nil or rows == http.null then
    if body[1] ~= nil then return body end
    return {}
  end
  if type(rows) ~= "table" then return {} end
  return rows
end

local function present(v)
  return v ~= nil and v ~= http.null and v ~= ""
end

--- pages{style=, fetch=fn(cursor)->body|nil,err, page_size=, first_page=,
--- first_cursor=, max_pages=} -> iterator over (page body, page number).
--- For "page" the cursor is the page number; for "nextlink" and "token" it
--- is the link or token from the previous page (first_cursor, usually nil,
--- for the first).
function M.pages(o)
  local style, fetch = o.style, o.fetch
  assert(style == "page" or style == "nextlink" or style == "token", "unknown paging style")
  local max_pages = o.max_pages or M.MAX_PAGES
  local page_size = o.page_size
  local n, finished = 0, false
  local seen = {}
  local cursor = o.first_cursor
  if style == "page" then cursor = o.first_page or 1 end
  return function()
    if finished then return nil end
    n = n + 1
    if n > max_pages then
      error(errors.new("paging", string.format("the server kept sending pages: stopped after %d", max_pages)), 0)
    end
    local body, err = fetch(cursor)
    if body == nil then error(err, 0) end
    local rows = M.rows_of(body)
    if style == "page" then
      if #rows == 0 or (page_size and #rows < page_size) then finished = true end
      if #rows == 0 then return nil end
      cursor = cursor + 1
    else
      local nxt = style == "nextlink" and body.nextLink or (body.nextToken or body.NextToken)
      if present(nxt) then
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

--- each_row(next_page) -> iterator over the rows of the pages an iterator
--- from pages() gives.
function M.each_row(next_page)
  local rows, i = {}, 0
  return function()
    while true do
      i = i + 1
      if rows[i] ~= nil then return rows[i] end
      local body = next_page()
      if body == nil then return nil end
      rows, i = M.rows_of(body), 0
    end
  end
end

return M
