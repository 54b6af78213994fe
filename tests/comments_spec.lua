-- variants: plain
-- The house's rule for comments, read from the files themselves: a file
-- opens with a summary of at most three lines, and so does each Lua doc
-- comment (a run of `---` lines); the detail follows after a blank line.
--
-- The files: the Lua modules, the bundled workflows, the specs' helpers,
-- the C core and the sandbox tenant's JavaScript. A first paragraph ends at
-- the first comment line with nothing on it (or, in C, at the comment's end).
local util = require("tests.helper").util

local function files()
  local out = {}
  local list = util.sh("ls lua/auditrun/*.lua lua/auditrun/*/*.lua scripts/*.lua tests/helper/*.lua "
    .. "csrc/*.c csrc/*.h tests/sandbox/*.js")
  for path in list:gmatch("[^\n]+") do out[#out + 1] = path end
  assert(#out > 80, "the files were not found: run from the checkout's top")
  return out
end

-- How many lines the header's first paragraph has, or nil and why.
local function header_lines(path, lines)
  local i = 1
  if lines[1] and (lines[1]:find("^#!") or lines[1]:find("^'use strict'")) then i = 2 end
  local first = lines[i] or ""
  local n = 0
  if path:find("%.[ch]$") then
    if not first:find("^/%*") then return nil, "no comment at the top" end
    for j = i, #lines do
      local text = lines[j]:gsub("^%s*/?%*+", ""):gsub("%*/%s*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
      if text == "" and j > i then break end
      n = n + 1
      if lines[j]:find("%*/") then break end
    end
    return n
  end
  local prefix = path:find("%.js$") and "//" or "--"
  if first:sub(1, #prefix) ~= prefix then return nil, "no comment at the top" end
  for j = i, #lines do
    local l = lines[j]
    if l:sub(1, #prefix) ~= prefix or l:sub(#prefix + 1):find("^%s*$") then break end
    n = n + 1
  end
  return n
end

-- The line numbers of doc comments whose first paragraph is over three lines.
local function long_doc_comments(lines)
  local out, k = {}, 1
  while k <= #lines do
    if lines[k]:find("^%s*%-%-%-") then
      local start, n = k, 0
      while k <= #lines and lines[k]:find("^%s*%-%-%-%s*%S") do
        n, k = n + 1, k + 1
      end
      if n > 3 then out[#out + 1] = start end
      while k <= #lines and lines[k]:find("^%s*%-%-%-") do k = k + 1 end
    else
      k = k + 1
    end
  end
  return out
end

describe("comments", function()
  it("open every file with a summary of at most three lines", function()
    local bad = {}
    for _, path in ipairs(files()) do
      local n, why = header_lines(path, util.file_lines(path))
      if not n then bad[#bad + 1] = path .. ": " .. why elseif n > 3 then bad[#bad + 1] = path .. ": " .. n .. " lines" end
    end
    assert.same({}, bad)
  end)

  it("open every Lua doc comment with a summary of at most three lines", function()
    local bad = {}
    for _, path in ipairs(files()) do
      if path:find("%.lua$") then
        for _, line in ipairs(long_doc_comments(util.file_lines(path))) do bad[#bad + 1] = path .. ":" .. line end
      end
    end
    assert.same({}, bad)
  end)

  it("find a long summary where there is one", function()
    assert.same({ 2 }, long_doc_comments { "", "--- a", "--- b", "--- c", "--- d", "---", "--- e" })
    assert.same({}, long_doc_comments { "--- a", "--- b", "--- c", "---", "--- d", "--- e", "--- f", "--- g" })
    assert.equal(4, header_lines("x.lua", { "-- a", "-- b", "-- c", "-- d" }))
    assert.equal(2, header_lines("x.c", { "/* a", " * b", " *", " * c */" }))
    assert.equal(1, header_lines("x.c", { "/* a */", "#include <x.h>" }))
  end)
end)
