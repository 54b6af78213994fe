-- auditrun.util: the small table helpers the modules share.
local M = {}

--- copy(t) -> a shallow copy of t (nil gives an empty table).
function M.copy(t)
  local c = {}
  if t then for k, v in pairs(t) do c[k] = v end end
  return c
end

--- sorted_keys(t) -> the keys of t, sorted.
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- merge(into, from) -> into, with every key of `from` that `into` lacks.
function M.merge(into, from)
  if from then
    for k, v in pairs(from) do
      if into[k] == nil then into[k] = v end
    end
  end
  return into
end

--- lazy(name) -> a stand-in for module `name` that requires it on first
--- use: a module a script may never need costs nothing to load (Lua parses
--- every module it loads, some 0.1 ms per 5 KB).
function M.lazy(name)
  return setmetatable({}, { __index = function(_, k) return require(name)[k] end })
end

local HTML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- html_escape(v) -> v as text safe anywhere in HTML: in an element and in a
--- quoted attribute (nil gives "").
function M.html_escape(v)
  if v == nil then return "" end
  return (tostring(v):gsub("[&<>\"']", HTML))
end

return M
