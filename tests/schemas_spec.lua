-- The activity timeline in the schemas SIEMs load (--schema ocsf, ecs), run
-- by the host against the sandbox with DealCloud, ExaVault and Insights:
-- sample rows of each vendor checked against the required fields, types
-- and allowed values of the OCSF 1.1 and ECS 8.11 slices in tests/fixtures,
-- ids that are the same from run to run, CSV's dotted columns, and a file
-- that cannot be finished in another schema than it was started in.
local helper = require("tests.helper")
local sandbox, host, util = helper.sandbox, helper.host, helper.util
local cjson = require("cjson")
local schemas = require("auditrun.schemas")
local sqlite = require("auditrun.sqlite")
local time = require("auditrun.time")

local DAY = 86400

local lines = util.file_lines

local function events(path)
  local out = {}
  for i, l in ipairs(lines(path)) do out[i] = cjson.decode(l) end
  return out
end

local function fixture(name)
  local text = util.read("tests/fixtures/" .. name)
  if not text then error("no fixture " .. name) end
  return cjson.decode(text)
end

local function is_integer(v) return type(v) == "number" and v == math.floor(v) end
local function is_ip(v)
  return type(v) == "string" and (v:find("^%d+%.%d+%.%d+%.%d+$") ~= nil or v:find("^[%x:]+$") ~= nil and v:find(":"))
end
local function is_array(v) return type(v) == "table" and (next(v) == nil or #v > 0) end

-- ---- OCSF ------------------------------------------------------------------------

local OCSF = fixture "ocsf-1.1.0-slice.json"

local check_ocsf_value

-- Every field of an object: known to the slice, of its type; every required one there.
local function check_ocsf_fields(v, fields, where, problems)
  for k, f in pairs(fields) do
    if f.requirement == "required" and v[k] == nil then problems[#problems + 1] = where .. k .. " is required" end
  end
  for k, x in pairs(v) do
    local f = fields[k]
    if not f then
      problems[#problems + 1] = where .. k .. " is not in the slice"
    else
      check_ocsf_value(x, f, where .. k, problems)
    end
  end
end

function check_ocsf_value(x, f, where, problems)
  local ty = f.type
  local function bad(why) problems[#problems + 1] = string.format("%s: %s (%s)", where, why, cjson.encode(x)) end
  local item = ty:match("^(.*)%[%]$")
  if item then
    if not is_array(x) then return bad("not an array") end
    for i, e in ipairs(x) do check_ocsf_value(e, { type = item }, where .. "[" .. i .. "]", problems) end
    return
  end
  if ty == "integer_t" or ty == "long_t" or ty == "timestamp_t" then
    if not is_integer(x) then return bad("not an integer") end
  elseif ty == "string_t" then
    if type(x) ~= "string" then return bad("not a string") end
  elseif ty == "ip_t" then
    if not is_ip(x) then return bad("not an IP address") end
  elseif ty == "object" then
    if type(x) ~= "table" then return bad("not an object") end
  elseif OCSF.objects[ty] then
    if type(x) ~= "table" then return bad("not an object") end
    check_ocsf_fields(x, OCSF.objects[ty], where .. ".", problems)
  else
    return bad("type " .. ty .. " is not in the slice")
  end
  if f.enum then
    local ok = false
    for _, e in ipairs(f.enum) do ok = ok or e == x end
    if not ok then bad("not one of its values") end
  end
end

-- The problems of an OCSF event (an empty list when it is valid).
local function ocsf_problems(ev)
  local problems = {}
  local class = OCSF.classes[tostring(math.tointeger(ev.class_uid))]
  if not class then return { "class_uid " .. tostring(ev.class_uid) .. " is not in the slice" } end
  local fields = {}
  for k, f in pairs(OCSF.base_event) do fields[k] = f end
  for k, f in pairs(class.attributes) do fields[k] = f end
  check_ocsf_fields(ev, fields, "", problems)
  if ev.category_uid ~= class.category_uid then problems[#problems + 1] = "category_uid is not its class's" end
  local activity = class.activity_id[tostring(math.tointeger(ev.activity_id))]
  if not activity then problems[#problems + 1] = "activity_id is not one of its class's" end
  if ev.activity_name ~= activity then problems[#problems + 1] = "activity_name is not activity_id's" end
  if ev.type_uid ~= ev.class_uid * 100 + ev.activity_id then
    problems[#problems + 1] = "type_uid is not class_uid * 100 + activity_id"
  end
  if ev.class_name ~= class.name then problems[#problems + 1] = "class_name is not class_uid's" end
  if ev.category_name ~= OCSF.categories[tostring(math.tointeger(class.category_uid))] then
    problems[#problems + 1] = "category_name is not its category's"
  end
  return problems
end

-- ---- ECS -------------------------------------------------------------------------

local ECS = fixture "ecs-8.11-slice.json"

local function dotted(v, prefix, out)
  for k, x in pairs(v) do
    if type(x) == "table" and not is_array(x) then dotted(x, prefix .. k .. ".", out) else out[prefix .. k] = x end
  end
  return out
end

local function ecs_problems(ev)
  local problems = {}
  local flat = dotted(ev, "", {})
  for name, f in pairs(ECS.fields) do
    if f.required and flat[name] == nil then problems[#problems + 1] = name .. " is required" end
  end
  for name, x in pairs(flat) do
    local f = ECS.fields[name]
    local function bad(why) problems[#problems + 1] = string.format("%s: %s (%s)", name, why, cjson.encode(x)) end
    if not f then
      bad("not in the slice")
    else
      local values = x
      if f.array then
        if not is_array(x) or #x == 0 then bad("not an array") end
      else
        values = { x }
      end
      for _, v in ipairs(type(values) == "table" and values or {}) do
        if f.type == "ip" then
          if not is_ip(v) then bad("not an IP address") end
        elseif f.type == "date" then
          if not time.parse(v) then bad("not a date") end
        elseif type(v) ~= "string" then
          bad("not a string")
        end
        if f.allowed then
          local ok = false
          for _, a in ipairs(f.allowed) do ok = ok or a == v end
          if not ok then bad("not an allowed value") end
        end
      end
    end
  end
  -- Each event.type is one its category expects.
  for _, ty in ipairs(flat["event.type"] or {}) do
    local ok = false
    for _, cat in ipairs(flat["event.category"] or {}) do
      for _, e in ipairs(ECS.expected_types[cat] or {}) do ok = ok or e == ty end
    end
    if not ok then problems[#problems + 1] = "event.type " .. ty .. " is not one its category expects" end
  end
  return problems
end

describe("the timeline in OCSF and ECS", function()
  local sb = sandbox.for_describe()
  local t, tenant, dir, from

  local function control(method, path, body) return sb:activity_control(method, path, body) end

  -- Every vendor set up: DealCloud, ExaVault and the first Insights user.
  local function env() return sb:activity_env(t, sb:secret_client_env(), { AUDITRUN_TENANT = "acme-audit" }) end

  local function timeline(name, extra)
    local args = { "activity-timeline", "--from", time.iso(from):sub(1, 19), "--to",
                   time.iso(from + 20 * DAY - 1):sub(1, 19), "--insights-users", dir .. "/users.txt",
                   "--out", dir .. "/" .. name, "-q" }
    for _, a in ipairs(extra or {}) do args[#args + 1] = a end
    return host.run(args, { env = env() })
  end

  setup(function()
    control("POST", "/reset")
    t = control("GET", "/tenant")
    tenant = sb:control("GET", "/tenant")
    sb:control("POST", "/config", { jobSeconds = 0.05 })
    dir = util.tempdir()
    util.write(dir .. "/users.txt", tenant.users[1].loginName .. "\n")
    from = time.parse(t.dealcloud.last) - 60 * DAY
  end)
  teardown(function() util.remove(dir) end)

  it("write each vendor's events in their OCSF class with every required field, and ECS alike", function()
    local code, _, err = timeline("ocsf.jsonl", { "--schema", "ocsf" })
    assert.equal(0, code, err)
    local ocsf = events(dir .. "/ocsf.jsonl")
    local products, classes, uids = {}, {}, {}
    for i, ev in ipairs(ocsf) do
      local problems = ocsf_problems(ev)
      assert.same({}, problems, "line " .. i .. ": " .. cjson.encode(ev))
      local product = ev.metadata.product.name
      products[product] = (products[product] or 0) + 1
      classes[tostring(math.tointeger(ev.class_uid))] = true
      assert.is_nil(uids[ev.metadata.uid], "metadata.uid twice: " .. ev.metadata.uid)
      uids[ev.metadata.uid] = true
      assert.equal("acme-audit", ev.metadata.tenant_uid)
      assert.equal("1.1.0", ev.metadata.version)
      assert.is_string(ev.metadata.original_time)
      -- The event's time is the vendor's, in epoch milliseconds.
      assert.equal(time.parse(ev.metadata.original_time) * 1000 // 1000, ev.time // 1000)
      if product == "DealCloud" then
        local kind = ev.unmapped.activityTypeId
        if kind == 2 then assert.same({ 3002, 1, 2 }, { ev.class_uid, ev.activity_id, ev.status_id }) end
        if kind == 3 then assert.same({ 3002, 2, 1 }, { ev.class_uid, ev.activity_id, ev.status_id }) end
        if kind == 1 then assert.equal(ev.unmapped.userName, ev.user.email_addr) end
        assert.equal(string.format("%d", ev.unmapped.userId), ev.actor.user.uid)
        assert.equal(ev.unmapped.sessionId, ev.actor.session.uid)
        if ev.unmapped.ip then assert.equal(ev.unmapped.ip, ev.src_endpoint.ip) end
        assert.matches("^%x+$", ev.metadata.uid)
      elseif product == "ExaVault" then
        assert.equal(ev.unmapped.type .. ":" .. ev.unmapped.id, ev.metadata.uid)
        if ev.unmapped.attributes.sessionId then
          assert.equal(ev.unmapped.attributes.sessionId, ev.actor.session.uid)
        end
        local op = ev.unmapped.attributes.operation
        if op == "RETR" then
          assert.same({ 6006, 2 }, { ev.class_uid, ev.activity_id })
          assert.equal(ev.unmapped.attributes.fileSource, ev.file.path)
        end
        if op == "STOR" then assert.same({ 6006, 1 }, { ev.class_uid, ev.activity_id }) end
        if op == "PASS" then assert.same({ 3002, 1 }, { ev.class_uid, ev.activity_id }) end
        local status = ev.unmapped.attributes.statusCode
        if status then assert.equal(status == 200 and 1 or 2, ev.status_id) end
      else
        assert.equal("AvePoint Insights", product)
        assert.equal(tenant.users[1].loginName, ev.actor.user.name)
      end
    end
    assert.is_true((products.DealCloud or 0) > 20 and (products.ExaVault or 0) > 20
      and (products["AvePoint Insights"] or 0) > 20, cjson.encode(products))
    assert.is_true(classes["3002"] and classes["6003"] and classes["6006"], cjson.encode(classes))

    -- ECS: the same events, each valid, with the same ids (reloads deduplicate).
    code, _, err = timeline("ecs.jsonl", { "--schema", "ecs" })
    assert.equal(0, code, err)
    local ecs = events(dir .. "/ecs.jsonl")
    assert.equal(#ocsf, #ecs)
    for i, ev in ipairs(ecs) do
      assert.same({}, ecs_problems(ev), "line " .. i .. ": " .. cjson.encode(ev))
      assert.equal(ocsf[i].metadata.uid, ev.event.id)
      assert.equal("acme-audit", ev.organization.id)
      assert.equal(ocsf[i].actor.user.uid, ev.user and ev.user.id)
      assert.same(ocsf[i].unmapped, cjson.decode(ev.event.original))
      if ocsf[i].status_id == 2 then assert.equal("failure", ev.event.outcome) end
      if ev.event.category[1] == "authentication" then assert.equal(3002, ocsf[i].class_uid) end
    end
  end)

  it("flatten OCSF and ECS to dotted CSV columns, the same events as JSON Lines", function()
    -- ECS's @timestamp is a text a spreadsheet would run: bare with --csv-raw (what a SIEM loads), else after a '.
    for _, case in ipairs { { "ocsf", {} }, { "ecs", { "--csv-raw" } }, { "ecs", {}, "cooked-" } } do
      local schema, name = case[1], (case[3] or "") .. case[1] .. ".csv"
      local args = { "--schema", schema }
      for _, a in ipairs(case[2]) do args[#args + 1] = a end
      local code, _, err = timeline(name, args)
      assert.equal(0, code, err)
      local got = lines(dir .. "/" .. name)
      local header = table.concat(schemas.columns(schema, "csv"), ",")
      if case[3] then header = "'" .. header end
      assert.equal(header .. "\r", got[1])
      assert.equal(#lines(dir .. "/" .. schema .. ".jsonl"), #got - 1)
    end
    local csv = lines(dir .. "/ocsf.csv")
    assert.matches("^%d+,%d+,", csv[2])
  end)

  it("leave out the time of an event the vendor dated unreadably, keeping its text, in OCSF and ECS", function()
    control("POST", "/config", { dcBadDates = 25 })
    local ok, problem = pcall(function()
      for _, schema in ipairs { "ocsf", "ecs" } do
        local code, _, err = timeline("bad-times-" .. schema .. ".jsonl", { "--schema", schema })
        assert.equal(0, code, err)
        local timeless = 0
        for _, ev in ipairs(events(dir .. "/bad-times-" .. schema .. ".jsonl")) do
          local raw = schema == "ocsf" and ev.unmapped or cjson.decode(ev.event.original)
          if raw.eventDate == "sometime" then
            timeless = timeless + 1
            if schema == "ocsf" then
              assert.is_nil(ev.time)
              assert.equal("sometime", ev.metadata.original_time)
              assert.same({ "time is required" }, ocsf_problems(ev))
            else
              assert.is_nil(ev["@timestamp"])
              assert.same({ "@timestamp is required" }, ecs_problems(ev))
            end
          end
        end
        assert.is_true(timeless > 0, schema)
      end
    end)
    control("POST", "/reset")
    assert(ok, problem)
  end)

  it("write OCSF to SQLite in the CSV's dotted columns, the same events as JSON Lines", function()
    local code, _, err = timeline("ocsf.sqlite", { "--schema", "ocsf" })
    assert.equal(0, code, err)
    local db = assert(sqlite.open(dir .. "/ocsf.sqlite"))
    local names = {}
    for row in db:rows("select name from pragma_table_info('records') order by cid") do names[#names + 1] = row.name end
    local ocsf = events(dir .. "/ocsf.jsonl")
    local got = {}
    for row in db:rows("select * from records") do got[#got + 1] = row end
    db:close()
    assert.same(schemas.columns("ocsf", "csv"), names)
    assert.equal(#ocsf, #got)
    for i, row in ipairs(got) do
      assert.equal(ocsf[i].metadata.uid, row["metadata.uid"])
      assert.equal(ocsf[i].class_uid, row.class_uid)
      assert.same(ocsf[i].unmapped, cjson.decode(row.unmapped))
    end
  end)

  it("refuse to finish a file in another schema than it was started in", function()
    local code, _, err = timeline("ocsf.jsonl", { "--schema", "ecs" })
    assert.equal(2, code)
    assert.matches("ocsf.jsonl was started with %-%-schema ocsf; this run is with %-%-schema ecs", err)
    code, _, err = timeline("ocsf.jsonl")
    assert.equal(2, code)
    assert.matches("started with %-%-schema ocsf; this run is with %-%-schema auditrun", err)
  end)
end)
