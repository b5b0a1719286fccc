namespace Escrow.Tests.Api.Lifecycle;

/// <summary>Starting an <see cref="EscrowApiFactory"/> on a fresh PostgreSQL database, and the reads the lifecycle tests share.</summary>
internal static class LifecycleApp
{
    /// <summary>A started factory on a new database (or on <paramref name="connectionString"/>, to restart on the same one).</summary>
    public static async Task<EscrowApiFactory> StartAsync(string prefix, IDictionary<string, string?>? settings = null, FakeTimeProvider? clock = null, string? connectionString = null)
    {
        connectionString ??= await (await PostgresServer.GetAsync()).CreateDatabaseAsync(prefix);
        var factory = new EscrowApiFactory(connectionString, clock, settings);
        _ = factory.Server;
        return factory;
    }

    public static string NewRecipientId() => "r-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A recipient whose Stripe account can receive transfers.</summary>
    public static async Task<string> PayableRecipientAsync(this EscrowApiFactory app, long basePriceMinor = 1_000, int? dailyLimit = null)
    {
        var id = NewRecipientId();
        await app.PutRecipientAsync(id, basePriceMinor, dailyLimit);
        await app.EnablePayoutsAsync(id);
        return id;
    }

    /// <summary>A held escrow of a new payable recipient: the start of most lifecycle tests.</summary>
    public static async Task<(JsonElement Escrow, Guid Id)> HeldEscrowOfNewRecipientAsync(this EscrowApiFactory app)
    {
        var escrow = await app.CreateHeldEscrowAsync(await app.PayableRecipientAsync());
        return (escrow, escrow.Id());
    }

    /// <summary>Creates the recipient's Express account (POST onboarding-link) without completing onboarding; returns the account id.</summary>
    public static async Task<string> CreateAccountAsync(this EscrowApiFactory app, string recipientId)
    {
        var link = await app.Platform().PostAsync($"/v1/recipients/{recipientId}/onboarding-link", null);
        link.EnsureSuccessStatusCode();
        return (await link.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accountId").GetString()!;
    }

    /// <summary>
    /// An escrow that was replied to and captured, whose recipient has an account but no payouts yet: it waits in
    /// <c>pending_user_setup</c> with the money captured, so a refund of it is a Stripe refund, not a cancel.
    /// </summary>
    public static async Task<Guid> CapturedAwaitingPayoutSetupAsync(this EscrowApiFactory app)
    {
        var recipient = NewRecipientId();
        await app.PutRecipientAsync(recipient);
        await app.CreateAccountAsync(recipient);
        var id = (await app.CreateHeldEscrowAsync(recipient)).Id();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await app.ReplyAsync(id)).StatusCode);
        await app.WaitForStatusAsync(id, "pending_user_setup");
        return id;
    }

    public static Task<HttpResponseMessage> ReplyAsync(this EscrowApiFactory app, Guid id, string text = "My answer.") =>
        app.Platform().PostAsJsonAsync($"/v1/escrows/{id}/response", new { text });

    /// <summary>Posts an inbound reply email for the escrow and returns Postmark's webhook outcome ("accepted", "ignored:...").</summary>
    public static async Task<string> EmailReplyAsync(this EscrowApiFactory app, Guid id, string? messageId = null)
    {
        var response = await app.PostInboundAsync(EscrowApiFactory.InboundReply(await app.ReplyTokenOfAsync(id), messageId: messageId));
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.TryGetProperty("outcome", out var outcome) ? outcome.GetString()! : body.ToString();
    }

    public static async Task<string?> RejectionOf(HttpResponseMessage response)
    {
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.TryGetProperty("rejection", out var r) ? r.GetString() : null;
    }

    public static string Status(this JsonElement escrow) => escrow.GetProperty("status").GetString()!;

    public static Guid Id(this JsonElement escrow) => escrow.GetProperty("id").GetGuid();

    public static string PaymentIntentId(this JsonElement escrow) => escrow.GetProperty("paymentIntentId").GetString()!;

    public static IReadOnlyList<string> Events(this JsonElement escrow) =>
        [.. escrow.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("event").GetString()!)];

    public static IReadOnlyList<string> Statuses(this JsonElement escrow) =>
        [.. escrow.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("status").GetString()!)];

    public static async Task<string> StatusOfAsync(this EscrowApiFactory app, Guid id) => (await app.GetEscrowAsync(id)).Status();

    /// <summary>The transfers Stripe holds for this escrow (transfer_group = escrow id).</summary>
    public static IReadOnlyList<SandboxTransfer> TransfersOf(this EscrowApiFactory app, Guid id) =>
        [.. app.Stripe.Transfers.Where(t => t.TransferGroup == id.ToString())];

    /// <summary>Capture requests Stripe answered for the PaymentIntent that performed work (not idempotent replays), successful or not.</summary>
    public static IReadOnlyList<SandboxRequest> CaptureRequests(this EscrowApiFactory app, string paymentIntentId) =>
        [.. app.Stripe.Requests.Where(r => r.Path.Contains($"/payment_intents/{paymentIntentId}/capture", StringComparison.Ordinal) && !r.Replayed)];

    public static IReadOnlyList<SandboxRequest> SucceededCaptures(this EscrowApiFactory app, string paymentIntentId) =>
        [.. app.CaptureRequests(paymentIntentId).Where(r => r.StatusCode is >= 200 and < 300)];

    public static IReadOnlyList<SandboxRequest> SucceededCancels(this EscrowApiFactory app, string paymentIntentId) =>
        [.. app.Stripe.Requests.Where(r => r.Path.Contains($"/payment_intents/{paymentIntentId}/cancel", StringComparison.Ordinal) && !r.Replayed && r.StatusCode is >= 200 and < 300)];

    public static async Task<IReadOnlyList<JsonElement>> OpenAlertsAsync(this EscrowApiFactory app, string kind)
    {
        var response = await app.Admin().GetAsync("/v1/admin/alerts?open=true");
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return [.. body.GetProperty("items").EnumerateArray().Where(a => a.GetProperty("kind").GetString() == kind)];
    }

    /// <summary>Forces every escrow to look at its due times now (what a reminder tick does), so tests need not wait for one.</summary>
    public static Task WakeAllAsync(this EscrowApiFactory app, IEnumerable<Guid> ids) =>
        Task.WhenAll(ids.Select(id => app.Grains.GetGrain<IEscrowGrain>(id).WakeAsync()));

    public static Task<JsonElement> WaitForAsync(this EscrowApiFactory app, Guid id, Func<JsonElement, bool> done, string what) =>
        Eventually.UntilAsync(() => app.GetEscrowAsync(id), done, $"escrow {id}: {what}");
}
