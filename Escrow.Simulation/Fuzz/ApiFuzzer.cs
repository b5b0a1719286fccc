using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Escrow.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Escrow.Simulation.Fuzz;

/// <summary>The outcome of a fuzzing pass.</summary>
public sealed class FuzzReport
{
    public int Inputs { get; set; }
    public Dictionary<int, int> ByStatus { get; } = [];
    public Dictionary<string, int> ByTarget { get; } = new(StringComparer.Ordinal);
    public List<string> ServerErrors { get; } = [];
    public List<string> StateChangesOnRejection { get; } = [];
    public TimeSpan Wall { get; set; }
    public bool Passed => ServerErrors.Count == 0 && StateChangesOnRejection.Count == 0;

    public string Summary()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"inputs: {Inputs}, wall: {Wall:hh\\:mm\\:ss}, responses >= 500: {ServerErrors.Count}, state changes on 4xx: {StateChangesOnRejection.Count}\n");
        sb.Append("by status: ").AppendJoin(", ", ByStatus.OrderBy(k => k.Key).Select(k => $"{k.Key}={k.Value}")).Append('\n');
        sb.Append("by target: ").AppendJoin(", ", ByTarget.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}")).Append('\n');
        foreach (var e in ServerErrors.Concat(StateChangesOnRejection).Take(20))
        {
            sb.Append("  - ").Append(e).Append('\n');
        }
        return sb.ToString();
    }
}

/// <summary>
/// Sends mutated and malformed requests to every public endpoint and both webhooks of the whole service
/// (in-process, with the Stripe and Postmark sandboxes): broken JSON, wrong types, huge, empty and unicode fields,
/// wrong content types, replayed and re-signed Stripe events, wrong credentials. Every answer must be below 500,
/// and an answer of 4xx must change nothing (no PaymentIntent, escrow, alert, email or recipient change).
/// Inputs come from System.Random(seed).
/// </summary>
public sealed class ApiFuzzer(EscrowApiFactory app, int seed)
{
    private readonly Random _rng = new(seed);
    private readonly IEscrowStore _store = app.Store();
    private readonly List<(Guid Id, string AccessToken, string? PaymentIntentId, string ReplyToken)> _escrows = [];
    private string _recipient = "";
    private string _validEvent = "";

    private static readonly string[] Unicode = ["", " ", "é", "日本語", "👩‍💻", "\u202Eevil", "\u0000", "\uFEFF", "a\r\nb", "<script>", "' OR 1=1 --", "%00", "../../etc/passwd", "\\u0000", "ﷺ", "\uD83D"];
    private static readonly string[] ContentTypes = ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/xml", "", "application/problem+json"];

    public async Task SetUpAsync()
    {
        _recipient = await app.NewRecipientAsync(dailyLimit: 1000, payouts: true);
        for (var i = 0; i < 3; i++)
        {
            var body = await app.CreateHeldEscrowAsync(_recipient);
            var id = body.GetProperty("id").GetGuid();
            _escrows.Add((id, body.GetProperty("accessToken").GetString()!, body.TryGetProperty("paymentIntentId", out var pi) ? pi.GetString() : null, await app.ReplyTokenOfAsync(id)));
        }
        var withPi = _escrows.First(e => e.PaymentIntentId is not null);
        _validEvent = await app.AuthorisedEventAsync(withPi.PaymentIntentId!);
        await SettleAsync();
    }

    public async Task<FuzzReport> RunAsync(int inputs, FuzzReport? report = null)
    {
        report ??= new FuzzReport();
        var wall = Stopwatch.StartNew();
        var before = await FingerprintAsync();
        for (var i = 0; i < inputs; i++)
        {
            var (target, request) = Next();
            report.ByTarget[target] = report.ByTarget.GetValueOrDefault(target) + 1;
            var describe = $"#{report.Inputs} {request.Method} {request.RequestUri} ({target})";
            HttpResponseMessage response;
            try
            {
                response = await app.CreateClient().SendAsync(request);
            }
            catch (Exception e)
            {
                report.ServerErrors.Add($"{describe}: threw {e.GetType().Name}: {e.Message}");
                report.Inputs++;
                continue;
            }
            var status = (int)response.StatusCode;
            report.ByStatus[status] = report.ByStatus.GetValueOrDefault(status) + 1;
            report.Inputs++;
            if (status >= 500)
            {
                report.ServerErrors.Add($"{describe}: {status} {Truncate(await response.Content.ReadAsStringAsync())}");
            }
            if (status is >= 400 and < 500)
            {
                var after = await FingerprintAsync();
                if (after != before)
                {
                    // Work started by an earlier accepted input may still be finishing: settle and look again.
                    var settled = await SettleAsync();
                    if (settled != before)
                    {
                        report.StateChangesOnRejection.Add($"{describe}: {status}, but the state changed: {before} -> {settled}");
                    }
                    before = settled;
                }
            }
            else
            {
                before = await SettleAsync();
            }
        }
        report.Wall += wall.Elapsed;
        return report;
    }

    private static string Truncate(string s) => s.Length > 300 ? s[..300] + "…" : s;

    /// <summary>What a rejected request must not change.</summary>
    private async Task<string> FingerprintAsync()
    {
        var counts = await _store.CountByStatusAsync();
        var alerts = (await _store.ListAlertsAsync(openOnly: false, limit: 1000)).Count;
        var recipient = await app.Grains.GetGrain<IRecipientGrain>(_recipient).GetAsync();
        var escrows = string.Join("|", await Task.WhenAll(_escrows.Select(async e => (await app.Grains.GetGrain<IEscrowGrain>(e.Id).GetAsync())?.Status)));
        return $"pi={app.Stripe.PaymentIntents.Count} mail={app.Postmark.Outbox.Count} alerts={alerts} escrows={string.Join(",", counts.Select(c => $"{c.Status}:{c.Count}"))} known={escrows} recipient={recipient}";
    }

    /// <summary>Waits until the fingerprint stops moving (the background work of an accepted input is done).</summary>
    private async Task<string> SettleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(20));
        var last = await FingerprintAsync();
        for (var stable = 0; stable < 3;)
        {
            await timer.WaitForNextTickAsync();
            var now = await FingerprintAsync();
            stable = now == last ? stable + 1 : 0;
            last = now;
        }
        return last;
    }

    // ---------------------------------------------------------------- generators

    private T Pick<T>(IReadOnlyList<T> items) => items[_rng.Next(items.Count)];

    private string RandomString()
    {
        return _rng.Next(8) switch
        {
            0 => "",
            1 => new string('x', _rng.Next(2) == 0 ? 70_000 : 1_200_000),
            2 => Pick(Unicode),
            3 => string.Concat(Enumerable.Range(0, _rng.Next(1, 40)).Select(_ => (char)_rng.Next(1, 0xD7FF))),
            4 => Guid.NewGuid().ToString(),
            5 => "PT" + _rng.Next(-5, 1000) + "H",
            6 => "a@" + new string('b', _rng.Next(1, 400)) + ".com",
            _ => Pick(Unicode) + _rng.Next(),
        };
    }

    private JsonNode? RandomValue() => _rng.Next(9) switch
    {
        0 => null,
        1 => JsonValue.Create(_rng.Next(2) == 0),
        2 => JsonValue.Create(_rng.NextInt64(long.MinValue, long.MaxValue)),
        3 => JsonValue.Create(_rng.NextDouble() * 1e300),
        4 => new JsonArray(JsonValue.Create(RandomString())),
        5 => new JsonObject { ["x"] = RandomString() },
        6 => JsonValue.Create(-1),
        7 => JsonValue.Create(0),
        _ => JsonValue.Create(RandomString()),
    };

    /// <summary>A valid body with a few fields mutated, dropped or added.</summary>
    private JsonObject Mutate(JsonObject valid)
    {
        var body = (JsonObject)valid.DeepClone();
        var keys = body.Select(kv => kv.Key).ToList();
        for (var n = _rng.Next(0, 4); n > 0 && keys.Count > 0; n--)
        {
            var key = Pick(keys);
            switch (_rng.Next(4))
            {
                case 0:
                    body.Remove(key);
                    break;
                case 1:
                    body[key] = RandomValue();
                    break;
                case 2:
                    body[key] = RandomString();
                    break;
                default:
                    body[RandomString() is { Length: > 0 and < 100 } k ? k : "extra"] = RandomValue();
                    break;
            }
        }
        return body;
    }

    /// <summary>The text of a body: mutated JSON, or JSON broken on purpose.</summary>
    private string Text(JsonObject valid)
    {
        var json = Mutate(valid).ToJsonString();
        return _rng.Next(10) switch
        {
            0 => json[..Math.Max(0, _rng.Next(json.Length))],
            1 => "",
            2 => "null",
            3 => "[" + json + "]",
            4 => new string('[', 5_000) + new string(']', 5_000),
            5 => json.Replace('"', '\''),
            6 => Encoding.UTF8.GetString(RandomNumberGenerator.GetBytes(_rng.Next(1, 200))),
            _ => json,
        };
    }

    private HttpContent Content(string text)
    {
        var content = new ByteArrayContent(_rng.Next(20) == 0 ? Encoding.Unicode.GetBytes(text) : Encoding.UTF8.GetBytes(text));
        var type = _rng.Next(3) == 0 ? Pick(ContentTypes) : "application/json";
        if (type.Length > 0)
        {
            content.Headers.TryAddWithoutValidation("Content-Type", type);
        }
        return content;
    }

    private string Id()
    {
        return _rng.Next(6) switch
        {
            0 => Guid.NewGuid().ToString(),
            // (A NUL in the path cannot even be sent: the HTTP client refuses it.)
            1 => Uri.EscapeDataString(RandomString() is { Length: > 0 and < 2000 } s && !s.Contains('\0', StringComparison.Ordinal) ? s : "x"),
            2 => "%2e%2e%2fadmin",
            3 => _escrows.Count > 0 ? Pick(_escrows).Id.ToString("N").ToUpperInvariant() : "x",
            _ => _escrows.Count > 0 ? Pick(_escrows).Id.ToString() : "x",
        };
    }

    private void Credentials(HttpRequestMessage request, string role)
    {
        switch (_rng.Next(8))
        {
            case 0:
                break;
            case 1:
                request.Headers.TryAddWithoutValidation("X-Api-Key", RandomString());
                break;
            case 2:
                request.Headers.TryAddWithoutValidation("X-Api-Key", role == "admin" ? EscrowApiFactory.PlatformKey : EscrowApiFactory.AdminKey);
                break;
            case 3:
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + (_escrows.Count > 0 && _rng.Next(2) == 0 ? Pick(_escrows).AccessToken : RandomString()));
                break;
            case 4:
                request.Headers.TryAddWithoutValidation("Authorization", "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(RandomString() + ":" + RandomString())));
                break;
            default:
                request.Headers.TryAddWithoutValidation("X-Api-Key", role == "admin" ? EscrowApiFactory.AdminKey : EscrowApiFactory.PlatformKey);
                break;
        }
    }

    /// <summary>A request to <paramref name="path"/> with fuzzed credentials around those of <paramref name="role"/>.</summary>
    private HttpRequestMessage Request(HttpMethod method, string path, string role, JsonObject? body = null) =>
        Request(method, path, role, body is null ? null : Content(Text(body)));

    private HttpRequestMessage Request(HttpMethod method, string path, string role, HttpContent? content)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        Credentials(request, role);
        return request;
    }

    private (string Target, HttpRequestMessage Request) Next()
    {
        var e = _escrows.Count > 0 ? Pick(_escrows) : default;
        switch (_rng.Next(18))
        {
            case 0:
                return ("PUT recipient", Request(HttpMethod.Put, $"/v1/recipients/{(_rng.Next(3) == 0 ? _recipient : Id())}", "platform",
                    new JsonObject { ["email"] = "fz@example.com", ["displayName"] = "Fz", ["basePriceMinor"] = 1000, ["currency"] = "EUR", ["revenueShareBps"] = 7500, ["dailyLimit"] = 5 }));
            case 1:
                return ("GET recipient", Request(HttpMethod.Get, $"/v1/recipients/{(_rng.Next(2) == 0 ? _recipient : Id())}", "platform"));
            case 2:
                return ("POST onboarding-link", Request(HttpMethod.Post, $"/v1/recipients/{Id()}/onboarding-link", "platform",
                    new JsonObject { ["refreshUrl"] = "https://a.test", ["returnUrl"] = "https://b.test" }));
            case 3:
            case 4:
            {
                var r = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows")
                {
                    Content = Content(Text(new JsonObject { ["recipientId"] = _rng.Next(2) == 0 ? _recipient : RandomString(), ["senderEmail"] = "s@example.com", ["responseWindow"] = "PT24H", ["subject"] = "S", ["message"] = "M", ["paymentMethodId"] = "pm_card_visa" })),
                };
                if (_rng.Next(4) != 0)
                {
                    r.Headers.TryAddWithoutValidation("Idempotency-Key", _rng.Next(3) == 0 ? RandomString() : Guid.NewGuid().ToString());
                }
                return ("POST escrow", r);
            }
            case 5:
                return ("GET escrow", Request(HttpMethod.Get, $"/v1/escrows/{Id()}", "platform"));
            case 6:
                // Valid credentials on a known escrow would release it (a 2xx); the rejections are what is checked.
                return ("POST response", Request(HttpMethod.Post, $"/v1/escrows/{Id()}/response", "platform", new JsonObject { ["text"] = "answer" }));
            case 7:
            case 8:
            {
                var action = Pick(new[] { "release", "refund", "retry-transfer", "approve-refund", "resolve-dispute" });
                return ("POST admin " + action, Request(HttpMethod.Post, $"/v1/admin/escrows/{Id()}/{action}", "admin", new JsonObject { ["reason"] = "fuzz" }));
            }
            case 9:
            {
                var path = Pick(new[] { "/v1/admin/escrows", "/v1/admin/alerts", "/v1/admin/circuit-breaker", "/v1/admin/alerts/deliveries", "/v1/admin/audit" });
                var query = Pick(new[] { "", "?limit=" + RandomString(), "?status=" + Uri.EscapeDataString(RandomString()), "?after=" + Uri.EscapeDataString(RandomString()), "?stuck=maybe", "?limit=0", "?limit=100000", "?open=" + RandomString(), "?state=" + Uri.EscapeDataString(RandomString()), "?since=" + Uri.EscapeDataString(RandomString()), "?escrowId=" + Uri.EscapeDataString(RandomString()), "?recipientId=" + Uri.EscapeDataString(RandomString()) });
                return ("GET admin", Request(HttpMethod.Get, path + query, "admin"));
            }
            case 10:
            {
                var path = _rng.Next(2) == 0 ? "/v1/admin/circuit-breaker/reset" : $"/v1/admin/alerts/{_rng.NextInt64(-5, long.MaxValue)}/ack";
                var body = Content(Text(new JsonObject { ["reason"] = "fuzz" }));
                return ("POST admin other", Request(HttpMethod.Post, path, _rng.Next(4) == 0 ? "admin" : "platform", body));
            }
            case 11:
            case 12:
                return ("POST stripe webhook", StripeEvent());
            case 13:
            case 14:
                return ("POST postmark inbound", Inbound(e.ReplyToken));
            case 16:
                return ("POST postmark bounce", Bounce());
            case 17:
            {
                // The e-mailed payout-setup links: a recipient id and an HMAC token, neither of them trusted.
                // (A NUL in the path cannot be sent through the test server: it throws before the service sees it.)
                var recipient = Uri.EscapeDataString(_rng.Next(3) == 0 ? _recipient
                    : RandomString() is { Length: > 0 and < 500 } r0 && !r0.Contains('\0', StringComparison.Ordinal) ? r0 : "x");
                var page = Pick(new[] { "", "/refresh", "/done" });
                var token = Pick(new[] { "", "?t=", "?t=" + Uri.EscapeDataString(RandomString()), "?t=" + new string('A', 5000), "?t=a.b.c" });
                return ("GET onboarding", new HttpRequestMessage(HttpMethod.Get, $"/onboarding/{recipient}{page}{token}"));
            }
            default:
            {
                var method = Pick(new[] { HttpMethod.Delete, HttpMethod.Patch, HttpMethod.Put, HttpMethod.Options, HttpMethod.Head });
                return ("other method", Request(method, Pick(new[] { "/v1/escrows", $"/v1/escrows/{Id()}", "/webhooks/stripe", "/webhooks/postmark/inbound", "/v1/admin/escrows", "/health/ready", "/openapi/v1.json" }), "admin"));
            }
        }
    }

    private HttpRequestMessage StripeEvent()
    {
        var node = JsonNode.Parse(_validEvent)!.AsObject();
        string payload;
        switch (_rng.Next(6))
        {
            case 0:
                payload = _validEvent; // replayed as it was
                break;
            case 1:
                node["id"] = "evt_fuzz_" + _rng.Next();
                node["type"] = Pick(new[] { "payment_intent.amount_capturable_updated", "payment_intent.payment_failed", "payment_intent.canceled", "charge.dispute.created", "account.updated", "transfer.reversed", RandomString() });
                payload = node.ToJsonString();
                break;
            case 2:
                node["id"] = "evt_fuzz_" + _rng.Next();
                var obj = node["data"]!["object"]!.AsObject();
                foreach (var key in new[] { "amount", "amount_capturable", "currency", "metadata", "id", "status", "transfer_group" })
                {
                    if (_rng.Next(3) == 0)
                    {
                        obj[key] = RandomValue();
                    }
                }
                payload = node.ToJsonString();
                break;
            default:
                payload = Text(node);
                break;
        }
        var r = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe") { Content = Content(payload) };
        var now = app.Clock.GetUtcNow().ToUnixTimeSeconds();
        var signature = _rng.Next(6) switch
        {
            0 => null,
            1 => EscrowApiFactoryExtensions.StripeSignature(payload, now, "whsec_wrong"),
            2 => EscrowApiFactoryExtensions.StripeSignature(payload, now - 3600),
            3 => RandomString(),
            4 => EscrowApiFactoryExtensions.StripeSignature(payload + " ", now),
            _ => EscrowApiFactoryExtensions.StripeSignature(payload, now),
        };
        if (signature is not null)
        {
            r.Headers.TryAddWithoutValidation("Stripe-Signature", signature);
        }
        return r;
    }

    private HttpRequestMessage Bounce()
    {
        var bounce = new JsonObject
        {
            ["RecordType"] = "Bounce", ["ID"] = _rng.NextInt64(), ["Type"] = Pick(new[] { "HardBounce", "SoftBounce", "SpamComplaint" }),
            ["TypeCode"] = _rng.Next(1, 100_000), ["MessageID"] = Guid.NewGuid().ToString(), ["Email"] = "alice@example.com",
            ["Description"] = "The server was unable to deliver your message.", ["BouncedAt"] = "2026-12-04T10:00:00Z", ["Inactive"] = true,
        };
        foreach (var key in new[] { "ID", "MessageID", "Email", "Type", "TypeCode", "BouncedAt", "Description" })
        {
            if (_rng.Next(3) == 0)
            {
                bounce[key] = RandomValue();
            }
        }
        var r = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/bounce") { Content = Content(_rng.Next(4) == 0 ? RandomString() : Text(bounce)) };
        if (_rng.Next(4) != 0)
        {
            var password = _rng.Next(3) == 0 ? "wrong" : EscrowApiFactory.InboundPassword;
            r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{EscrowApiFactory.InboundUser}:{password}")));
        }
        return r;
    }

    private HttpRequestMessage Inbound(string? replyToken)
    {
        var token = replyToken is not null && _rng.Next(2) == 0 ? replyToken : RandomString();
        var valid = JsonSerializer.SerializeToNode(EscrowApiFactory.InboundReply(token is { Length: < 200 } ? token : "x"))!.AsObject();
        // An automatic reply with a valid token must not release anything.
        valid["Headers"] = new JsonArray(new JsonObject { ["Name"] = Pick(new[] { "Auto-Submitted", "X-Autoreply", "Precedence" }), ["Value"] = Pick(new[] { "auto-replied", "yes", "bulk" }) });
        var r = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/inbound") { Content = Content(Text(valid)) };
        var (user, password) = _rng.Next(5) switch
        {
            0 => (RandomString(), RandomString()),
            1 => (EscrowApiFactory.InboundUser, "wrong"),
            2 => ("", ""),
            _ => (EscrowApiFactory.InboundUser, EscrowApiFactory.InboundPassword),
        };
        if (_rng.Next(8) != 0)
        {
            r.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        return r;
    }
}
