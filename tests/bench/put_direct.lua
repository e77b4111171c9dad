-- wrk: Cog's own client side, for the direct baseline: PUT /predictions/<unique id>
-- with Prefer: respond-async and a webhook to $WEBHOOK (the floor program).
local counter, thread_id = 0, 0
local threads = 0
function setup(thread)
	threads = threads + 1
	thread:set("thread_id", threads)
end
function init(args)
	counter = 0
end
request = function()
	counter = counter + 1
	local body = '{"input":{"prompt":"hello"},"webhook":"' .. (os.getenv("WEBHOOK") or "") ..
		'","webhook_events_filter":["completed"]}'
	return wrk.format("PUT", "/predictions/direct-" .. thread_id .. "-" .. counter,
		{["Content-Type"] = "application/json", ["Prefer"] = "respond-async"}, body)
end
