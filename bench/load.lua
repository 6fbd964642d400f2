-- wrk script: realistic, varied tracking hits (sites, paths, referrers, user agents, IPs).
-- SITES is a comma-separated list of site ids, passed in the environment.
local sites = {}
for id in string.gmatch(os.getenv("SITES") or "", "[^,]+") do sites[#sites + 1] = id end

local browsers = {
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel %d) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (iPad; CPU OS 16_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.%d Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.0.0",
}
local agents = {}
for i = 1, 300 do
  local t = browsers[(i % #browsers) + 1]
  local v = 100 + (i % 40)
  agents[i] = string.format(t, v, v)
end
local referrers = {
  "", "", "", "https://www.google.com/", "https://www.google.co.uk/", "https://news.ycombinator.com/",
  "https://t.co/abc", "https://www.reddit.com/r/selfhosted/", "https://duckduckgo.com/",
  "https://github.com/some/repo", "https://chatgpt.com/", "https://www.bing.com/search?q=x",
  "https://lobste.rs/", "https://m.facebook.com/", "https://blog.example.net/post",
}
local sections = {"blog", "docs", "pricing", "about", "changelog", "guides"}
local utms = {"", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
              "?utm_source=twitter&utm_medium=social", "?ref=producthunt", "?gclid=abc123"}
local names = {"pageview", "pageview", "pageview", "pageview", "pageview", "pageview",
               "Signup", "Outbound Link: Click", "File Download"}

-- Visitors: each is one site, one IP and one user agent, and sends about HITS_PER_VISITOR
-- hits (default 4, like a real visit of a few pages) while new visitors keep arriving: hit n
-- goes to a visitor drawn from the 256 newest of floor(n / HITS_PER_VISITOR). With 1, every
-- hit is (nearly) a new visitor, which opens a session and a limiter key per hit.
local per_visitor = tonumber(os.getenv("HITS_PER_VISITOR") or "4")
local n = 0

math.randomseed(42)

request = function()
  n = n + 1
  local v = math.floor(n / per_visitor) + math.random(0, 255)
  local site = sites[(v % #sites) + 1]
  local path = "/" .. sections[math.random(#sections)] .. "/" .. math.random(2000)
  local name = names[math.random(#names)]
  local ref = referrers[math.random(#referrers)]
  local body = string.format(
    '{"n":"%s","u":"https://example.com%s%s","s":"%s","r":"%s","w":%d%s}',
    name, path, utms[math.random(#utms)], site, ref, 320 + (v % 2200),
    name == "Signup" and ',"p":{"plan":"pro"},"$":{"amount":"9.99","currency":"EUR"}' or "")
  local headers = {
    ["Content-Type"] = "text/plain",
    ["User-Agent"] = agents[(v % #agents) + 1],
    ["X-Forwarded-For"] = string.format("%d.%d.%d.%d", 1 + math.floor(v / 16777216) % 220,
                                        math.floor(v / 65536) % 256, math.floor(v / 256) % 256,
                                        1 + v % 253),
  }
  return wrk.format("POST", "/collect", headers, body)
end
