using System.Collections.Concurrent;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Escrow.Tests.Api.Operations;

/// <summary>Alerts reach a person: the configured webhooks (signed) and e-mail address get each new alert once.</summary>
public sealed class AlertDeliveryTests
{
    private const string Secret = "alert-signing-secret-for-tests";
    private const string OpsEmail = "ops@example.com";

    private static Dictionary<string, string?> Settings(AlertListener listener, bool email = false) => new()
    {
        ["Alerts:Webhooks:0:Url"] = listener.Url,
        ["Alerts:Webhooks:0:Secret"] = Secret,
        ["Alerts:Email:To"] = email ? OpsEmail : null,
        ["Alerts:PollPeriod"] = "00:00:00.2",
        ["Alerts:FirstRetryDelay"] = "PT30S",
        ["Alerts:MaxRetryDelay"] = "PT30S",
    };

    private static Task<(AlertRecord Alert, bool Created)> RaiseAsync(EscrowApiFactory app, string kind, string severity, Guid? escrowId, string key) =>
        app.Services.GetRequiredService<IEscrowStore>().RaiseAlertAsync(new NewAlert(kind, severity, escrowId, key, $"{kind} details\nsecond line", app.Clock.GetUtcNow()));

    private static async Task<JsonElement> DeliveriesAsync(EscrowApiFactory app, string query = "") =>
        (await app.Admin().GetFromJsonAsync<JsonElement>($"/v1/admin/alerts/deliveries{query}")).GetProperty("items");

    [Fact]
    public async Task A_new_alert_is_posted_signed_to_the_webhook_and_mailed_once_and_one_below_the_minimum_severity_is_not()
    {
        await using var listener = await AlertListener.StartAsync();
        await using var app = await LifecycleApp.StartAsync("alert-deliver", Settings(listener, email: true));
        var recipient = await app.PayableRecipientAsync();
        var escrow = await app.CreateHeldEscrowAsync(recipient);
        // The recipient of an escrow's alert is read from the escrows' projection, written just after the create answers.
        await Eventually.UntilAsync(async () => (await app.Services.GetRequiredService<IEscrowStore>().GetEscrowAsync(escrow.Id())) is not null, "the escrow's projection");

        var (info, _) = await RaiseAsync(app, "just_so_you_know", "info", null, "alert-test/info");
        var (critical, created) = await RaiseAsync(app, "payment_mismatch", "critical", escrow.Id(), "alert-test/critical");
        Assert.True(created);
        await Eventually.UntilAsync(() => Task.FromResult(listener.Received.Any(r => r.AlertId == critical.Id)), "the critical alert at the webhook");

        var received = Assert.Single(listener.Received);
        using var body = JsonDocument.Parse(received.Body);
        var json = body.RootElement;
        Assert.Equal(critical.Id, json.GetProperty("id").GetInt64());
        Assert.Equal("payment_mismatch", json.GetProperty("kind").GetString());
        Assert.Equal("critical", json.GetProperty("severity").GetString());
        Assert.Equal(escrow.Id(), json.GetProperty("escrowId").GetGuid());
        Assert.Equal(recipient, json.GetProperty("recipientId").GetString());
        Assert.Equal("payment_mismatch details\nsecond line", json.GetProperty("message").GetString());
        Assert.Equal(critical.CreatedAt, json.GetProperty("createdAt").GetDateTimeOffset());
        Assert.Equal($"[critical] payment_mismatch: payment_mismatch details second line (escrow {escrow.Id()})", json.GetProperty("text").GetString());
        Assert.True(AlertListener.SignatureIsValid(received.Signature, received.Body, Secret), $"signature {received.Signature}");
        Assert.Equal(critical.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), received.AlertIdHeader);

        await Eventually.UntilAsync(() => Task.FromResult(app.Postmark.Outbox.Any(m => m.To == OpsEmail)), "the alert e-mail");
        var mail = Assert.Single(app.Postmark.Outbox, m => m.To == OpsEmail);
        Assert.Equal("[critical] payment_mismatch", mail.Subject);
        Assert.Contains($"(escrow {escrow.Id()})", mail.TextBody, StringComparison.Ordinal);

        // The same alert raised again is the same alert: nothing new is sent. A second alert is, once.
        Assert.False((await RaiseAsync(app, "payment_mismatch", "critical", escrow.Id(), "alert-test/critical")).Created);
        var (second, _) = await RaiseAsync(app, "escrow_stuck", "warning", escrow.Id(), "alert-test/warning");
        await Eventually.UntilAsync(async () => (await DeliveriesAsync(app, "?state=delivered")).GetArrayLength() == 4, "both alerts delivered to both targets");

        Assert.Equal([critical.Id, second.Id], listener.Received.Select(r => r.AlertId).Order());
        Assert.Equal(2, app.Postmark.Outbox.Count(m => m.To == OpsEmail));
        var deliveries = await DeliveriesAsync(app);
        Assert.Equal(4, deliveries.GetArrayLength());
        Assert.DoesNotContain(deliveries.EnumerateArray(), d => d.GetProperty("alertId").GetInt64() == info.Id);
        Assert.All(deliveries.EnumerateArray(), d => Assert.Equal(1, d.GetProperty("attempts").GetInt32()));
        // The webhook's path (where chat services put their token) is not shown.
        Assert.Contains(deliveries.EnumerateArray(), d => d.GetProperty("destination").GetString() == $"http://127.0.0.1:{listener.Port}/…");
        Assert.DoesNotContain("hook-token", (await app.Admin().GetStringAsync("/v1/admin/alerts/deliveries")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_delivery_pending_when_the_service_stops_is_sent_once_after_the_restart()
    {
        var connectionString = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("alert-restart");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var listener = await AlertListener.StartAsync();
        listener.AnswerWith = HttpStatusCode.ServiceUnavailable;
        long alertId;
        await using (var first = await LifecycleApp.StartAsync("alert-restart", Settings(listener), clock, connectionString))
        {
            alertId = (await RaiseAsync(first, "duplicate_transfer", "critical", null, "alert-test/restart")).Alert.Id;
            var pending = await Eventually.UntilAsync(async () => (await DeliveriesAsync(first)).EnumerateArray().FirstOrDefault(),
                d => d.ValueKind == JsonValueKind.Object && d.GetProperty("lastError").GetString() == "HTTP 503", "the failed first attempt recorded");
            Assert.Equal("pending", pending.GetProperty("state").GetString());
            Assert.Equal(1, pending.GetProperty("attempts").GetInt32());
            Assert.Equal(clock.GetUtcNow().AddSeconds(30), pending.GetProperty("nextAttemptAt").GetDateTimeOffset(), TimeSpan.FromSeconds(1));
        }
        Assert.Equal(1, listener.Attempts);

        listener.AnswerWith = HttpStatusCode.OK;
        await using var restarted = await LifecycleApp.StartAsync("alert-restart", Settings(listener), clock, connectionString);
        clock.Advance(TimeSpan.FromSeconds(31));
        var delivered = await Eventually.UntilAsync(async () => (await DeliveriesAsync(restarted)).EnumerateArray().Single(),
            d => d.GetProperty("state").GetString() == "delivered", "the alert delivered after the restart");
        Assert.Equal(2, delivered.GetProperty("attempts").GetInt32());
        Assert.Equal(alertId, Assert.Single(listener.Received).AlertId);
        Assert.Equal(2, listener.Attempts);
    }

    [Fact]
    public async Task A_webhook_that_keeps_failing_is_retried_with_backoff_until_the_horizon_then_shown_as_failed()
    {
        await using var listener = await AlertListener.StartAsync();
        listener.AnswerWith = HttpStatusCode.InternalServerError;
        var settings = Settings(listener);
        settings["Alerts:RetryFor"] = "PT1M";
        settings["Alerts:FirstRetryDelay"] = "PT30S";
        settings["Alerts:MaxRetryDelay"] = "PT1M";
        await using var app = await LifecycleApp.StartAsync("alert-give-up", settings);
        await RaiseAsync(app, "refund_not_made", "critical", null, "alert-test/give-up");

        // Attempts at 0 s and 30 s; the next would be 60 s later, past the one-minute horizon, so the second failure gives up.
        await Eventually.UntilAsync(() => Task.FromResult(listener.Attempts == 1), "the first attempt");
        await Eventually.UntilAsync(async () => (await DeliveriesAsync(app, "?state=pending")).EnumerateArray().Any(d => d.GetProperty("lastError").ValueKind == JsonValueKind.String), "the first failure recorded");
        app.Clock.Advance(TimeSpan.FromSeconds(30));
        var failed = await Eventually.UntilAsync(async () => (await DeliveriesAsync(app, "?state=failed")).EnumerateArray().FirstOrDefault(),
            d => d.ValueKind == JsonValueKind.Object, "the delivery given up");
        Assert.Equal(2, failed.GetProperty("attempts").GetInt32());
        Assert.Equal("HTTP 500", failed.GetProperty("lastError").GetString());
        Assert.Equal(JsonValueKind.Null, failed.GetProperty("nextAttemptAt").ValueKind);
        Assert.Equal(2, listener.Attempts);
        Assert.Empty(listener.Received);

        Assert.Equal(HttpStatusCode.BadRequest, (await app.Admin().GetAsync("/v1/admin/alerts/deliveries?state=lost")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.Anonymous().GetAsync("/v1/admin/alerts/deliveries")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await app.Platform().GetAsync("/v1/admin/alerts/deliveries")).StatusCode);
    }

    [Fact]
    public async Task Without_PostgreSQL_alerts_are_delivered_from_memory_too()
    {
        await using var listener = await AlertListener.StartAsync();
        await using var app = new EscrowApiFactory(settings: Settings(listener));
        var (alert, _) = await RaiseAsync(app, "circuit_breaker_tripped", "critical", null, "alert-test/memory");
        await Eventually.UntilAsync(() => Task.FromResult(listener.Received.Count == 1), "the alert at the webhook");
        Assert.Equal(alert.Id, Assert.Single(listener.Received).AlertId);
    }

    /// <summary>An operators' webhook on 127.0.0.1: records what it is sent and answers with <see cref="AnswerWith"/>.</summary>
    private sealed class AlertListener : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _attempts;

        private AlertListener(WebApplication app, int port)
        {
            _app = app;
            Port = port;
        }

        public int Port { get; }

        public string Url => $"http://127.0.0.1:{Port}/hook-token/T000/B000";

        public volatile HttpStatusCode AnswerWith = HttpStatusCode.OK;

        public ConcurrentQueue<Delivery> Received { get; } = new();

        public int Attempts => Volatile.Read(ref _attempts);

        public sealed record Delivery(long AlertId, string Body, string Signature, string AlertIdHeader);

        public static async Task<AlertListener> StartAsync()
        {
            var port = PostgresServer.GetFreePort();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var listener = new AlertListener(app, port);
            app.MapPost("/hook-token/T000/B000", async (HttpRequest request) =>
            {
                using var reader = new StreamReader(request.Body, Encoding.UTF8);
                var body = await reader.ReadToEndAsync();
                Interlocked.Increment(ref listener._attempts);
                var status = listener.AnswerWith;
                if (status == HttpStatusCode.OK)
                {
                    using var json = JsonDocument.Parse(body);
                    listener.Received.Enqueue(new Delivery(json.RootElement.GetProperty("id").GetInt64(), body,
                        request.Headers["Escrow-Signature"].ToString(), request.Headers["Escrow-Alert-Id"].ToString()));
                }
                return Results.StatusCode((int)status);
            });
            await app.StartAsync();
            return listener;
        }

        public static bool SignatureIsValid(string header, string body, string secret)
        {
            var parts = header.Split(',').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p[1]);
            var expected = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{parts["t"]}.{body}"));
            return CryptographicOperations.FixedTimeEquals(expected, Convert.FromHexString(parts["v1"]));
        }

        public ValueTask DisposeAsync() => _app.DisposeAsync();
    }
}
