using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Escrow.Grains.Storage;
using Escrow.Sandbox;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Escrow.Testing;

/// <summary>Drives the in-process service the way its clients do: recipients, Stripe events and sandbox calls, store reads.</summary>
public static class EscrowApiFactoryExtensions
{
    public static string NewRecipientId() => "c-" + Guid.NewGuid().ToString("N")[..12];

    public static string EmailOf(string recipientId) => $"{recipientId}@example.com";

    public static async Task<JsonElement> JsonOf(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    public static HttpClient WithBearer(this EscrowApiFactory app, string token)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static HttpClient WithKey(this EscrowApiFactory app, string key)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public static HttpClient WithBasic(this EscrowApiFactory app, string user, string password)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return client;
    }

    public static IEscrowStore Store(this EscrowApiFactory app) => app.Services.GetRequiredService<IEscrowStore>();

    /// <summary>A recipient with its own email address, so the outbox can be checked per test.</summary>
    public static async Task<string> NewRecipientAsync(this EscrowApiFactory app, int? dailyLimit = null, bool payouts = false)
    {
        var recipient = NewRecipientId();
        await app.PutRecipientAsync(recipient, dailyLimit: dailyLimit, email: EmailOf(recipient));
        if (payouts)
        {
            await app.EnablePayoutsAsync(recipient);
        }
        return recipient;
    }

    public static IReadOnlyList<SandboxEmail> MailTo(this EscrowApiFactory app, string recipientId) =>
        app.Postmark.Outbox.Where(m => m.To.Contains(EmailOf(recipientId), StringComparison.OrdinalIgnoreCase)).ToList();

    public static int PaymentIntentsFor(this EscrowApiFactory app, Guid escrowId) =>
        app.Stripe.PaymentIntents.Count(p => p.Metadata.TryGetValue("escrow_id", out var id) && id == escrowId.ToString()
                                             || p.TransferGroup == escrowId.ToString());

    /// <summary>An escrow created without a payment method: 201, awaiting_payment, a PaymentIntent waiting for the card.</summary>
    public static async Task<JsonElement> CreateAwaitingPaymentEscrowAsync(this EscrowApiFactory app, string recipientId)
    {
        var response = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipientId, paymentMethodId: null), Guid.NewGuid().ToString());
        var body = await JsonOf(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        Assert.Equal("awaiting_payment", body.GetProperty("status").GetString());
        return body;
    }

    public static async Task<string> StatusOf(this EscrowApiFactory app, Guid escrowId) =>
        (await app.GetEscrowAsync(escrowId)).GetProperty("status").GetString()!;

    // ---- Stripe ----

    public static string StripeSignature(string payload, long timestamp, string secret = EscrowApiFactory.WebhookSecret)
    {
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{timestamp}.{payload}"));
        return $"t={timestamp},v1={Convert.ToHexStringLower(mac)}";
    }

    public static long UnixNow(this EscrowApiFactory app) => app.Clock.GetUtcNow().ToUnixTimeSeconds();

    public static Task<HttpResponseMessage> PostStripeEventAsync(this EscrowApiFactory app, string payload, string? signature)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/stripe") { Content = new StringContent(payload, Encoding.UTF8, "application/json") };
        if (signature is not null)
        {
            request.Headers.TryAddWithoutValidation("Stripe-Signature", signature);
        }
        return app.CreateClient().SendAsync(request);
    }

    public static Task<HttpResponseMessage> PostSignedStripeEventAsync(this EscrowApiFactory app, string payload) =>
        app.PostStripeEventAsync(payload, StripeSignature(payload, app.UnixNow()));

    private static HttpClient StripeClient(EscrowApiFactory app)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "sk_test_x");
        return client;
    }

    /// <summary>The sandbox's own JSON of a PaymentIntent, as Stripe would put it in an event.</summary>
    public static async Task<JsonObject> PaymentIntentJsonAsync(this EscrowApiFactory app, string paymentIntentId)
    {
        var response = await StripeClient(app).GetAsync($"/_sandbox/stripe/v1/payment_intents/{paymentIntentId}");
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    /// <summary>Confirms the PaymentIntent the way the sender's browser would; the sandbox then delivers the signed event.</summary>
    public static async Task ConfirmInSandboxAsync(this EscrowApiFactory app, string paymentIntentId, string paymentMethod = "pm_card_visa")
    {
        var response = await StripeClient(app).PostAsync($"/_sandbox/stripe/v1/payment_intents/{paymentIntentId}/confirm",
            new FormUrlEncodedContent([new KeyValuePair<string, string>("payment_method", paymentMethod)]));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>An event as Stripe would send it, around <paramref name="dataObject"/>.</summary>
    public static string EventJson(this EscrowApiFactory app, string type, JsonObject dataObject, string? eventId = null) => new JsonObject
    {
        ["id"] = eventId ?? "evt_test_" + Guid.NewGuid().ToString("N"),
        ["object"] = "event",
        ["api_version"] = app.Services.GetRequiredService<IOptions<SandboxOptions>>().Value.ApiVersion,
        ["created"] = app.UnixNow(),
        ["livemode"] = false,
        ["pending_webhooks"] = 1,
        ["type"] = type,
        ["data"] = new JsonObject { ["object"] = dataObject },
        ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = null },
    }.ToJsonString();

    /// <summary>A payment_intent.amount_capturable_updated event for the PaymentIntent, as if it were authorised for <paramref name="capturable"/>.</summary>
    public static async Task<string> AuthorisedEventAsync(this EscrowApiFactory app, string paymentIntentId, long? capturable = null)
    {
        var pi = await app.PaymentIntentJsonAsync(paymentIntentId);
        var amount = capturable ?? pi["amount"]!.GetValue<long>();
        pi["status"] = "requires_capture";
        pi["amount"] = amount;
        pi["amount_capturable"] = amount;
        return app.EventJson("payment_intent.amount_capturable_updated", pi);
    }

    public static async Task<IReadOnlyList<JsonElement>> AlertsAsync(this EscrowApiFactory app, bool open = false)
    {
        var response = await app.Admin().GetAsync($"/v1/admin/alerts?limit=200&open={(open ? "true" : "false")}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await JsonOf(response)).GetProperty("items").EnumerateArray()];
    }

    public static async Task<IReadOnlyList<JsonElement>> AlertsOfAsync(this EscrowApiFactory app, Guid escrowId, string kind) =>
        [.. (await app.AlertsAsync()).Where(a => a.GetProperty("kind").GetString() == kind
                                                && a.TryGetProperty("escrowId", out var e) && e.ValueKind == JsonValueKind.String && e.GetGuid() == escrowId)];

}
