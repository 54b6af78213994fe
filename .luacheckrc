std = "lua54"
max_line_length = 130
-- <close> variables are used by going out of scope; name them _x.
ignore = { "211/_.*" }
files["tests"] = { std = "+busted" }
