namespace Escrow.Benchmarks;

public readonly record struct CallResult(HttpStatusCode Code, string? Id, string? Status, double Milliseconds, string? Body);

/// <summary>The HTTP contract of Escrow.Api, as the load generator uses it; the emulators' controls at <paramref name="emulatorsUrl"/> (default: the API's own).</summary>
public sealed class EscrowClient(HttpClient http, string baseUrl, string? emulatorsUrl = null)
{
    private const string Message = "Hello, a question for the benchmark: would you answer it, please?";

    public static HttpClient CreateHttp() => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = 1024,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
        UseCookies = false,
        AllowAutoRedirect = false,
    })
    {
        Timeout = TimeSpan.FromMinutes(2),
    };

    public string BaseUrl => baseUrl;

    public HttpClient Http => http;

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private async Task<CallResult> SendAsync(HttpRequestMessage request)
    {
        var watch = Stopwatch.StartNew();
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        watch.Stop();
        string? id = null;
        string? status = null;
        if (body.Length > 0 && body[0] == '{')
        {
            try
            {
                using var doc = JsonDocument.Parse(body);
                if (doc.RootElement.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String)
                {
                    id = i.GetString();
                }
                if (doc.RootElement.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String)
                {
                    status = s.GetString();
                }
            }
            catch (JsonException)
            {
            }
        }
        return new CallResult(response.StatusCode, id, status, watch.Elapsed.TotalMilliseconds, response.IsSuccessStatusCode ? null : body);
    }

    private HttpRequestMessage Platform(HttpMethod method, string path, string? json = null)
    {
        var request = new HttpRequestMessage(method, baseUrl + path);
        request.Headers.Add("X-Api-Key", ApiProcess.PlatformKey);
        if (json is not null)
        {
            request.Content = Json(json);
        }
        return request;
    }

    public async Task PutRecipientAsync(string id, int dailyLimit)
    {
        var r = await SendAsync(Platform(HttpMethod.Put, $"/v1/recipients/{id}",
            $$"""{"email":"{{id}}@example.com","displayName":"Bench {{id}}","basePriceMinor":1000,"currency":"EUR","dailyLimit":{{dailyLimit}}}"""));
        Expect(r, HttpStatusCode.OK, $"PUT /v1/recipients/{id}");
    }

    /// <summary>Onboarding link (creates the Express account), the sandbox's enable-payouts control, then waits for payoutsEnabled.</summary>
    public async Task EnablePayoutsAsync(string id)
    {
        using var linkRequest = Platform(HttpMethod.Post, $"/v1/recipients/{id}/onboarding-link", "{}");
        using var link = await http.SendAsync(linkRequest);
        var body = await link.Content.ReadAsStringAsync();
        if (!link.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"onboarding-link for {id}: {(int)link.StatusCode} {body}");
        }
        var account = JsonDocument.Parse(body).RootElement.GetProperty("accountId").GetString();
        using var enable = await http.PostAsync($"{emulatorsUrl ?? baseUrl}/_sandbox/stripe/accounts/{account}/enable-payouts", null);
        if (!enable.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"enable-payouts for {account}: {(int)enable.StatusCode} {await enable.Content.ReadAsStringAsync()}");
        }
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            using var get = Platform(HttpMethod.Get, $"/v1/recipients/{id}");
            using var response = await http.SendAsync(get);
            var json = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode && JsonDocument.Parse(json).RootElement.GetProperty("payoutsEnabled").GetBoolean())
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new InvalidOperationException($"Recipient {id}: payoutsEnabled still false 60 s after enable-payouts (account.updated webhook not processed?).");
    }

    /// <summary>
    /// POST /v1/escrows, anonymous sender, pm_card_visa (the sandbox authorises at once). Each create has its own sender
    /// address, as real traffic does: one address may have only Escrow:UnpaidPerSenderMax escrows in flight.
    /// </summary>
    public Task<CallResult> CreateAsync(string idempotencyKey, string recipientId, string window)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, baseUrl + "/v1/escrows")
        {
            Content = Json($$"""{"recipientId":"{{recipientId}}","senderEmail":"sender-{{idempotencyKey}}@example.com","responseWindow":"{{window}}","subject":"Benchmark","message":"{{Message}}","paymentMethodId":"pm_card_visa"}"""),
        };
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        return SendAsync(request);
    }

    /// <summary>POST /v1/escrows/{id}/response with the platform key: the recipient answered in the platform's UI.</summary>
    public Task<CallResult> ReplyAsync(string id) => SendAsync(Platform(HttpMethod.Post, $"/v1/escrows/{id}/response", """{"text":"Here is my answer."}"""));

    public Task<CallResult> GetAsync(string id) => SendAsync(Platform(HttpMethod.Get, $"/v1/escrows/{id}"));

    public static void Expect(CallResult r, HttpStatusCode code, string what)
    {
        if (r.Code != code)
        {
            throw new InvalidOperationException($"{what}: expected {(int)code}, got {(int)r.Code}: {r.Body}");
        }
    }
}

public static class Percentiles
{
    /// <summary>Nearest-rank percentile of an unsorted sample.</summary>
    public static double Of(IReadOnlyCollection<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }
}
