-- The command line as a whole: every bundled workflow's help ends with two
-- or three examples, each one a command line that workflow reads (and one
-- with a flag misspelt it refuses); `auditrun completion bash|zsh` prints
-- a script that completes the workflows' names and each one's flags, tried
-- in the shell itself.
local cli = require("auditrun.cli")
local files = require("auditrun.files")
local helper = require("tests.helper")
local host, util = helper.host, helper.util

-- The bundled workflows: {name = ..., path = ...}, from the scripts folder.
local function workflows()
  local out = {}
  for _, file in ipairs(assert(files.list("scripts"))) do
    local name = file:match("^([^.].*)%.lua$")
    if name then out[#out + 1] = { name = name, path = "scripts/" .. file } end
  end
  return out
end

-- The words of a command line as the shell reads them: split at spaces,
-- quotes ('...', "...") taken off. A character the shell would do more
-- with (a pipe, a redirection, an expansion) has no place in an example.
local function words(line)
  local out, i = {}, 1
  while i <= #line do
    if line:sub(i, i) == " " then
      i = i + 1
    else
      local word = {}
      while i <= #line and line:sub(i, i) ~= " " do
        local c = line:sub(i, i)
        if c == "'" or c == '"' then
          local close = line:find(c, i + 1, true)
          assert(close, "an unclosed quote in: " .. line)
          word[#word + 1] = line:sub(i + 1, close - 1)
          i = close + 1
        else
          assert(not c:find("[|&;<>()$`\\*?~!{}]"), "'" .. c .. "' in an example: " .. line)
          word[#word + 1] = c
          i = i + 1
        end
      end
      out[#out + 1] = table.concat(word)
    end
  end
  return out
end

-- The flag with its last two letters swapped: --out becomes --otu.
local function misspelt(flag)
  return flag:sub(1, -3) .. flag:sub(-1) .. flag:sub(-2, -2)
end

describe("the command line", function()
  it("reads a workflow's spec without running it", function()
    local spec = assert(cli.spec_of("scripts/guest-access.lua"))
    assert.equal("guest-access", spec.name)
    assert.equal("export", spec.kind)
    local script = host.script "print('ran')"
    local none, err = cli.spec_of(script)
    os.remove(script)
    assert.is_nil(none)
    assert.matches("declares no command line", err)
  end)

  it("is documented in docs/workflows.md as auditrun reference makes it: the reference is every --help", function()
    local code, out, err = host.run { "reference" }
    assert.equal(0, code, err)
    assert.equal(util.read("docs/workflows.md"), out, "docs/workflows.md is not current: run make docs")
    for _, wf in ipairs(workflows()) do
      local _, help = host.run { wf.name, "--help" }
      assert.is_truthy(out:find("\n## " .. wf.name .. "\n\n```text\n" .. help:gsub("%s+$", ""), 1, true), wf.name)
    end
  end)

  it("gives every workflow two or three examples its own parser reads, and ends its help with them", function()
    local all = workflows()
    assert.is_true(#all >= 18, "only " .. #all .. " workflows")
    for _, wf in ipairs(all) do
      local spec = assert(cli.spec_of(wf.path))
      assert.equal(wf.name, spec.name)
      local examples = spec.examples
      assert.is_table(examples, wf.name .. " has no examples")
      assert.is_true(#examples >= 2 and #examples <= 3, wf.name .. ": " .. #examples .. " examples")
      for _, example in ipairs(examples) do
        local w = words(example)
        assert.equal("auditrun", w[1], example)
        assert.equal(wf.name, w[2], example)
        local args = { table.unpack(w, 3) }
        local opts, why = cli.read(spec, args)
        assert.is_table(opts, example .. ": " .. tostring(why))
        assert.is_nil(why, example)
        -- The check is one that would see a mistake: a misspelt flag, a stray flag.
        local stray = { table.unpack(args) }
        stray[#stray + 1] = "--no-such-flag"
        assert.is_nil((cli.read(spec, stray)), example .. " --no-such-flag")
        for i, a in ipairs(args) do
          if a:match("^%-%-%a") then
            local typo = { table.unpack(args) }
            typo[i] = misspelt(a)
            assert.is_nil((cli.read(spec, typo)), example .. " with " .. typo[i])
            break
          end
        end
      end
      -- As the user sees them: the last lines of --help, whole.
      local code, out, err = host.run { wf.name, "--help" }
      assert.equal(0, code, err)
      local tail = "\n\nExamples:\n  " .. table.concat(examples, "\n  ") .. "\n"
      assert.equal(tail, out:sub(-#tail), wf.name .. " --help ends\n" .. out:sub(-400))
    end
  end)

  describe("completion", function()
    local dir
    before_each(function() dir = util.tempdir() end)
    after_each(function() util.remove(dir) end)

    it("for bash completes the workflows' names, their flags and the flags' values", function()
      local code, out, err = host.run { "completion", "bash" }
      assert.equal(0, code, err)
      util.write(dir .. "/auditrun.bash", out)
      -- COMPREPLY for a line typed so far (the word under the cursor last).
      local function complete(...)
        local typed = { ... }
        local quoted = {}
        for i, w in ipairs(typed) do quoted[i] = host.quote(w) end
        local script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _auditrun; printf '%%s\\n' \"${COMPREPLY[@]}\"")
          :format(host.quote(dir .. "/auditrun.bash"), table.concat(quoted, " "), #typed - 1)
        local got = util.lines(util.sh("bash -c " .. host.quote(script)))
        table.sort(got)
        return got
      end
      assert.same({ "guest-access" }, complete("auditrun", "gues"))
      local names = complete("auditrun", "")
      assert.equal(#workflows(), #names)
      for _, wf in ipairs(workflows()) do
        assert.is_truthy(table.concat(names, " "):find(wf.name, 1, true), wf.name)
      end
      assert.same({ "--data-sources", "--dry-run" }, complete("auditrun", "guest-access", "--d"))
      assert.same({ "--data-sources" }, complete("auditrun", "--profile", "x", "guest-access", "--da"))
      assert.same({ "--incremental", "--insights-users" }, complete("auditrun", "activity-timeline", "--in"))
      assert.same({ "ocsf" }, complete("auditrun", "activity-timeline", "--schema", "o"))
      assert.same({ "--each-profile" }, complete("auditrun", "--ea"))
    end)

    it("for zsh completes the workflows' names and their flags", function()
      local code, out, err = host.run { "completion", "zsh" }
      assert.equal(0, code, err)
      assert.matches("^#compdef auditrun\n", out)
      for _, wf in ipairs(workflows()) do
        assert.is_truthy(out:find("\n    " .. wf.name .. ")\n", 1, true), wf.name .. " has no case")
        assert.is_truthy(out:find('\n    "' .. wf.name .. ":", 1, true), wf.name .. " is not a command")
      end
      assert.is_truthy(out:find('--data-sources[Workspaces', 1, true))
      if not util.sh("command -v zsh"):find("zsh") then return end
      -- In zsh itself: an interactive shell on a pseudo-terminal, a Tab after each line.
      os.execute("mkdir -p " .. dir .. "/functions")
      util.write(dir .. "/functions/_auditrun", out)
      util.write(dir .. "/try.zsh", ([==[
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'PS1="> "; fpath=(%s/functions $fpath); autoload -U compinit; compinit -u -D; auditrun() { }'
for line in 'auditrun gues' 'auditrun guest-access --data-s' 'auditrun --profile x site-overview --form'; do
  zpty -w -n z "$line"$'\t'
  got=""
  for i in {1..50}; do
    sleep 0.1
    zpty -r -t z chunk && got+=$chunk
    [[ $got == *"$line"?* ]] && break
  done
  print -r -- "${got##*$line}" | tr -d '\033' | head -c 40; print
  zpty -w -n z $'\025'
done
zpty -d z
]==]):format(dir))
      local got = util.sh("timeout 60 zsh -f " .. host.quote(dir .. "/try.zsh") .. " 2>&1")
      local lines = util.lines(got)
      assert.equal(3, #lines, got)
      assert.matches("^t%-access", lines[1])
      assert.matches("^ources", lines[2])
      assert.matches("^at", lines[3])
    end)

    it("refuses a shell it has no script for", function()
      local code, out, err = host.run { "completion", "fish" }
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("\nauditrun: completion: argument 'shell' must be one of 'bash', 'zsh'", err)
    end)
  end)
end)
