-- variants: plain
-- auditrun.paging without a server: where each style stops (a short page,
-- a capped page size, an empty page, a total reached, a missing cursor),
-- and what it refuses (endless pages, a cursor sent twice).
local paging = require("auditrun.paging")
local cjson = require("cjson")
local json = require("auditrun.json")

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

  -- ---- paging.walk: nested levels and the resume token ----

  -- A walk of two lists (months, then users of that month) and pages of
  -- `size` rows under each pair, in every style; `sent` counts requests.
  local function nested(style, sent)
    local months = { "jan", "feb", "mar" }
    local users = { jan = { "a", "b" }, feb = {}, mar = { "c", "d", "e" } }
    local counts = { a = 7, b = 0, c = 3, d = 10, e = 5 }
    local size = 3
    return paging.walk {
      levels = {
        { items = months },
        { items = function(m) return users[m] end },
        { pages = function(m, u, at)
            local function fetch(cursor)
              sent[#sent + 1] = m .. "/" .. u .. "@" .. tostring(cursor)
              local first = style == "page" and (cursor - 1) * size or style == "offset" and cursor or (cursor or 0)
              local n = math.max(0, math.min(size, counts[u] - first))
              local out = {}
              for i = 1, n do out[i] = m .. "/" .. u .. "." .. (first + i) end
              if style == "cursor" then
                return { values = out, next = first + n < counts[u] and tostring(first + n) or nil }
              end
              return { values = out }
            end
            local f = fetch
            if style == "cursor" then f = function(c) return fetch(c and tonumber(c)) end end
            return paging.pages { style = style, fetch = f, rows = { "values" }, next = { "next" },
                                  page_size = size, at = at }
          end,
          rows = function(body) return body.values end },
      },
    }
  end

  local function through(walk_pages, token)
    local got, tokens = {}, {}
    for page_rows, after in walk_pages(token) do
      for _, r in ipairs(page_rows) do got[#got + 1] = r end
      tokens[#tokens + 1] = { token = after and json.decode(json.encode(after)), rows = #got }
    end
    return got, tokens
  end

  it("walk nested levels so that a walk resumed from any token gives exactly the rows after it", function()
    for _, style in ipairs { "page", "offset", "cursor" } do
      local whole, tokens = through(nested(style, {}))
      assert.equal(25, #whole, style)
      for _, t in ipairs(tokens) do
        if t.token then
          -- The token went through JSON, as the journal keeps it.
          local sent = {}
          local rest = through(nested(style, sent), t.token)
          assert.same({ table.unpack(whole, t.rows + 1) }, rest, style .. " from " .. cjson.encode(t.token))
          -- No page before the token is asked again.
          for _, req in ipairs(sent) do assert.is_nil(req:find("^jan/a@1$") and t.rows > 3 and req, style) end
        end
      end
    end
  end)

  it("refuse a token of a shape the walk does not know, before any request", function()
    local sent = {}
    local cases = {
      { walk = "auditrun-walk/9" },
      { walk = paging.TOKEN, at = { 1, 2, 3, { page = 1 } } },
      { walk = paging.TOKEN, at = { "x" } },
      { walk = paging.TOKEN, at = { 1, 1, "page five" } },
      "a string",
    }
    for _, token in ipairs(cases) do
      local ok, err = pcall(function()
        for _ in nested("page", sent)(token) do end
      end)
      assert.is_false(ok)
      assert.equal("usage", err.kind, cjson.encode(token))
      assert.is_true(err.resume_token, cjson.encode(token))
    end
    assert.same({}, sent)
  end)

  it("read an earlier version's cursor through old, and refuse one old cannot read", function()
    local pages = paging.walk {
      old = function(c) return math.tointeger(c.n) and { at = { c.n + 1 } } or nil end,
      levels = { { items = { 10, 20, 30 } }, { pages = function() return function() return nil end end } },
    }
    local ok, err = pcall(function() for _ in pages({ n = "x" }) do end end)
    assert.is_false(ok)
    assert.is_true(err.resume_token)
    local seen = {}
    local walked = paging.walk {
      old = function(c) return { at = { c.n + 1 } } end,
      levels = { { items = { 10, 20, 30 } }, { pages = function(v)
        local done = false
        return function()
          if done then return nil end
          done = true
          seen[#seen + 1] = v
          return { v }, 1, false
        end
      end } },
    }
    for _ in walked({ n = 1 }) do end
    assert.same({ 20, 30 }, seen)
  end)

  it("keep the range a walk started with, and refuse other ends given for its rerun", function()
    local function ranged(given)
      return paging.walk {
        range = { from = given.from or 100, to = given.to or 200, given = given },
        start = function(w)
          return { { pages = function()
            local done = false
            return function()
              if done then return nil end
              done = true
              return { w.range.from .. "-" .. w.range.to }, 1, false
            end
          end } }
        end,
      }
    end
    local got
    for r in ranged({})(nil) do got = r end
    assert.same({ "100-200" }, got)
    -- A rerun at another moment (to not given) reads the same range.
    local again
    for r in ranged({ to = nil })({ walk = paging.TOKEN, range = { from = 100, to = 200 }, at = {} }) do again = r end
    assert.same({ "100-200" }, again)
    local ok, err = pcall(function()
      for _ in ranged({ from = 150 })({ walk = paging.TOKEN, range = { from = 100, to = 200 }, at = {} }) do end
    end)
    assert.is_false(ok)
    assert.equal("usage", err.kind)
    assert.matches("give that range again", err.message)
  end)
end)
