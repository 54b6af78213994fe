-- Prints the reference of every bundled workflow, in Markdown, from each workflow's own command line
local cli = require("auditrun.cli")
local errors = require("auditrun.errors")
local files = require("auditrun.files")

local opts = cli.parse({
  name = "reference",
  summary = "Prints the reference of every bundled workflow in Markdown: each one's summary and its --help, "
    .. "made from the workflow's own command line.",
  description = "docs/workflows.md is this output (make docs writes it; the suite checks that it is current), so "
    .. "the reference and --help cannot drift apart.",
  examples = { "auditrun reference", "auditrun reference --out docs/workflows.md" },
  flags = function(p)
    p:option("--out", "Write it to FILE (whole or not at all) instead of stdout."):argname("FILE")
  end,
}, ...)

local specs = cli.bundled_specs()
local out = {
  "# Bundled workflows: the reference",
  "",
  "<!-- Made by `auditrun reference` (make docs) from each workflow's own command line: edit the workflow, "
    .. "not this file. -->",
  "",
  "Each workflow's `--help`, as `auditrun NAME --help` prints it. The guide to what they are for, what lands",
  "in `--out` and how a rerun resumes is in the README and [exports.md](exports.md).",
  "",
}
for _, spec in ipairs(specs) do out[#out + 1] = string.format("- [`%s`](#%s): %s", spec.name, spec.name, spec.summary) end
for _, spec in ipairs(specs) do
  out[#out + 1] = ""
  out[#out + 1] = "## " .. spec.name
  out[#out + 1] = ""
  out[#out + 1] = "```text"
  out[#out + 1] = (cli.parser(spec):get_help():gsub("%s+$", ""))
  out[#out + 1] = "```"
end
local text = table.concat(out, "\n") .. "\n"
if opts.out then
  errors.try(files.write_atomic(opts.out, text))
else
  io.stdout:write(text)
end
