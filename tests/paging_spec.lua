-- variants: plain
-- auditrun.paging without a server: where each style stops (a short page,
-- a capped page size, an empty page, a total reached, a missing cursor),
-- and what it refuses (endless pages, a cursor sent twice).
local paging = require "auditrun.paging"
local cjson = require "cjson"

-- A list of n rows, numbered from `from`.
local function rows(from, n)
  local out = {}
  for i = 1, n do out[i] = from + i - 1 end
  return out
end

-- Walks every page; returns the rows in order and the cursors asked for.
local function walk(o)
  local asked, got = {}, {}
  local fetch = o.fetch
  o.fetch = function(cursor)
    asked[#asked + 1] = cursor == nil and "nil" or cursor
    return fetch(cursor)
  end
  for row in paging.each_row(paging.pages(o), o.rows) do got[#got + 1] = row end
  return got, asked
end

-- A server holding `total` rows that serves at most `cap` a page.
local function offset_server(total, cap, limit)
  return function(offset)
    local n = math.max(0, math.min(cap, limit, total - offset))
    return { data = rows(offset + 1, n), totalResults = 0 }
  end
end

local function count_of(got) return #got end

describe("paging", function()
  it("by page number ends on a short page, or on an empty one after full pages", function()
    local function server(total, size)
      return function(page)
        local from = (page - 1) * size
        return { results = rows(from + 1, math.max(0, math.min(size, total - from))) }
      end
    end
    local got, asked = walk { style = "page", fetch = server(25, 10), rows = { "results" }, page_size = 10 }
    assert.equal(25, count_of(got))
    assert.same({ 1, 2, 3 }, asked)
    got, asked = walk { style = "page", fetch = server(30, 10), rows = { "results" }, page_size = 10 }
    assert.equal(30, count_of(got))
    assert.same({ 1, 2, 3, 4 }, asked)
  end)

  it("by page number stops once the reported total is seen", function()
    local got, asked = walk { style = "page", rows = { "rows" }, total = "totalRecords", page_size = 10, first = 1,
      fetch = function(page) return { totalRecords = 30, rows = rows((page - 1) * 10 + 1, 10) } end }
    assert.equal(30, #got)
    assert.same({ 1, 2, 3 }, asked)
  end)

  it("by offset ends on a short page, on a capped page size, and on an empty page", function()
    -- Short page: 250 rows, 100 a page.
    local got, asked = walk { style = "offset", rows = { "data" }, fetch = offset_server(250, 1000, 100) }
    assert.same(rows(1, 250), got)
    assert.same({ 0, 100, 200 }, asked)
    -- The server caps at 40 although 100 were asked: every page is "short"
    -- against the request, yet only the one shorter than the others ends.
    got, asked = walk { style = "offset", rows = { "data" }, fetch = offset_server(130, 40, 100) }
    assert.same(rows(1, 130), got)
    assert.same({ 0, 40, 80, 120 }, asked)
    -- An exact multiple ends on the empty page after it.
    got, asked = walk { style = "offset", rows = { "data" }, fetch = offset_server(80, 40, 100) }
    assert.same(rows(1, 80), got)
    assert.same({ 0, 40, 80 }, asked)
    -- Nothing at all.
    got, asked = walk { style = "offset", rows = { "data" }, fetch = offset_server(0, 40, 100) }
    assert.same({}, got)
    assert.same({ 0 }, asked)
  end)

  it("by cursor passes the next link back and ends when there is none", function()
    local got, asked = walk { style = "cursor", rows = { "values" }, next = { "nextLink" }, fetch = function(c)
      if c == nil then return { values = { 1, 2 }, nextLink = "b" } end
      if c == "b" then return { values = { 3 }, nextLink = cjson.null } end
    end }
    assert.same({ 1, 2, 3 }, got)
    assert.same({ "nil", "b" }, asked)
  end)

  it("stop a server whose pages never end, or that sends the same link twice", function()
    local endless = paging.pages { style = "cursor", next = { "nextToken" }, rows = { "results" }, max_pages = 20,
      fetch = function(cursor) return { results = { cursor or 0 }, nextToken = (cursor or 0) + 1 } end }
    local ok, err = pcall(function() for _ in endless do end end)
    assert.is_false(ok)
    assert.equal("paging", err.kind)
    assert.matches("stopped after 20", err.message)
    local looping = paging.pages { style = "cursor", next = { "nextLink" },
      fetch = function() return { values = { 1 }, nextLink = "same" } end }
    ok, err = pcall(function() for _ in looping do end end)
    assert.is_false(ok)
    assert.matches("page 2: the server sent the same next page link as page 1", err.message)
  end)

  -- Regression: only a page the same as the one just before was caught, so
  -- pages A, B, A, B ... (or pages that each start a little before the last
  -- one ended) were followed, and their rows given out, for ever.
  it("stop a walk that goes round, in every style, before a repeated row is given out", function()
    local A, B = rows(1, 10), rows(11, 10)
    local function stops(o, pattern)
      local got = {}
      local ok, err = pcall(function()
        for row in paging.each_row(paging.pages(o), o.rows) do got[#got + 1] = row end
      end)
      assert.is_false(ok)
      assert.equal("paging", err.kind)
      assert.matches(pattern, err.message)
      assert.same(rows(1, 20), got)
    end
    -- Alternating pages, by page number (the total is never reached) ...
    stops({ style = "page", rows = { "rows" }, total = "totalRecords", page_size = 10, name = "DealCloud user_activity",
            fetch = function(page) return { totalRecords = 1000, rows = page % 2 == 1 and A or B } end },
          "^DealCloud user_activity: page 3 repeats rows of page 1")
    -- ... by offset (a full page every time) ...
    stops({ style = "offset", rows = { "data" }, name = "ExaVault session_logs",
            fetch = function(offset) return { data = (offset // 10) % 2 == 0 and A or B } end },
          "^ExaVault session_logs: page 3 %(offset 20%) repeats rows of page 1 %(offset 0%)")
    -- ... and by cursor, with a new link each time.
    stops({ style = "cursor", rows = { "values" }, next = { "nextLink" },
            fetch = function(c) c = c or 0 return { values = c % 2 == 0 and A or B, nextLink = c + 1 } end },
          "page 3 repeats rows of page 1")
    -- Shifting pages: each starts 5 rows before the last one ended; the
    -- second page's first new row is never given out with the old ones.
    local shifted = {}
    local ok, err = pcall(function()
      for row in paging.each_row(paging.pages { style = "page", rows = { "rows" }, page_size = 10,
        fetch = function(page) return { rows = rows((page - 1) * 5 + 1, 10) } end }, { "rows" }) do
        shifted[#shifted + 1] = row
      end
    end)
    assert.is_false(ok)
    assert.matches("page 2 repeats rows of page 1", err.message)
    assert.same(rows(1, 10), shifted)
  end)

  it("compare a page's rows with the page before, and never with themselves", function()
    local check = paging.repeats()
    assert.is_nil(check({ 1, 1, 2 }, "page 1"))
    assert.equal("page 1", check({ 2, 3 }, "page 2"))
    -- The same row on pages far apart (two users' identical permissions) is data.
    check = paging.repeats()
    assert.is_nil(check({ 1, 2 }, "page 1"))
    assert.is_nil(check({ 3, 4 }, "page 2"))
    assert.is_nil(check({ 5, 1 }, "page 3"))
    -- A whole page seen before is a repeat however far back (up to PAGES_REMEMBERED).
    assert.equal("page 2", check({ 3, 4 }, "page 4"))
  end)

  it("read rows under the first field present, or a body that is a list", function()
    assert.same({ 1 }, paging.rows_of({ values = { 1 } }, { "values", "results" }))
    assert.same({ 2 }, paging.rows_of({ results = { 2 } }, { "values", "results" }))
    assert.same({ 3 }, paging.rows_of({ values = cjson.null, results = { 3 } }, { "values", "results" }))
    assert.same({ 4 }, paging.rows_of({ 4 }, { "data" }))
    assert.same({}, paging.rows_of(cjson.null, { "data" }))
  end)

  it("raise the error of a page that failed", function()
    local pages = paging.pages { style = "page", fetch = function() return nil, { kind = "http", message = "boom" } end }
    local ok, err = pcall(pages)
    assert.is_false(ok)
    assert.equal("boom", err.message)
  end)
end)
