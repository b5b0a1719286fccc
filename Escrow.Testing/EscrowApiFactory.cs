using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Escrow.Sandbox;
using Escrow.Silo;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Orleans.TestingHost;

namespace Escrow.Testing;

/// <summary>
/// The whole service in-process: the API with its co-hosted silo and the Stripe and Postmark sandboxes, all HTTP
/// between them going through the test server (the real Stripe.net and Postmark code paths). Time is a fake
/// clock the test moves; Orleans' own membership and messaging stay on real time.
/// </summary>
public sealed class EscrowApiFactory : WebApplicationFactory<Escrow.Api.Hosting.ApiKeyRegistry>
{
    public const string PlatformKey = "platform-key-for-tests-0001";
    public const string AdminKey = "admin-key-for-tests-000001";
    public const string TokenSecret = "token-secret-for-tests-000001";
    public const string WebhookSecret = "whsec_test_secret_for_escrow_api";
    public const string ConnectWebhookSecret = "whsec_test_connect_secret_for_escrow_api";
    public const string PublicBaseUrl = "https://escrow.test";
    public const string InboundUser = "postmark-test";
    public const string InboundPassword = "inbound-password-for-tests";

    private readonly Dictionary<string, string?> _settings;
    private readonly bool _kestrel;

    /// <param name="kestrelPort">
    /// Serve on 127.0.0.1 at this port with Kestrel instead of the in-memory test server (a browser needs a socket); the
    /// sandboxes are then called over that socket too, as in the no-configuration run.
    /// </param>
    public EscrowApiFactory(string? connectionString = null, FakeTimeProvider? clock = null, IDictionary<string, string?>? settings = null, int? kestrelPort = null)
    {
        _kestrel = kestrelPort is not null;
        if (kestrelPort is { } port)
        {
            UseKestrel(o => o.Listen(System.Net.IPAddress.Loopback, port));
        }
        Clock = clock ?? new FakeTimeProvider(DateTimeOffset.UtcNow);
        _settings = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Escrow"] = connectionString,
            // Without a connection string the API would start a local PostgreSQL cluster under the working directory.
            ["Escrow:Storage"] = connectionString is null ? "InMemory" : null,
            ["Silo:SiloPort"] = PostgresServer.GetFreePort().ToString(),
            ["Silo:GatewayPort"] = PostgresServer.GetFreePort().ToString(),
            ["Silo:ServiceId"] = "escrow-tests",
            ["Silo:ReminderMinimumPeriod"] = "00:00:01",
            ["Silo:ReminderRefreshPeriod"] = "00:00:02",
            ["Escrow:ReminderPeriod"] = "PT1S",
            ["Escrow:MaxReminderDueTime"] = "PT1S",
            ["Api:PlatformKeys:0"] = PlatformKey,
            ["Api:AdminKeys:0"] = AdminKey,
            // Fixed, as a deployment's is: an app started again on the same database derives the same tokens.
            ["Tokens:Secrets:0"] = TokenSecret,
            ["Stripe:WebhookSecret"] = WebhookSecret,
            ["Stripe:ConnectWebhookSecret"] = ConnectWebhookSecret,
            ["Api:PublicBaseUrl"] = PublicBaseUrl,
            ["Postmark:InboundUsername"] = InboundUser,
            ["Postmark:InboundPassword"] = InboundPassword,
            ["Postmark:InboundDomain"] = "reply.test",
            ["RateLimits:SenderPermitsPerMinute"] = "100000",
            ["RateLimits:ReaderPermitsPerMinute"] = "100000",
            // Most tests send every escrow from one sender address; the unpaid caps have their own tests (SlotExhaustionSecurityTests).
            ["Escrow:UnpaidPerSenderMax"] = "1000",
            ["Escrow:UnpaidPerRecipientMax"] = "1000",
            // The test server has no client address (every request is "unknown"); the card-testing guard has its own tests.
            ["RateLimits:DeclinesPerClientMax"] = "1000",
            ["RateLimits:DeclinesPerWindowAlert"] = "999",
            ["urls"] = kestrelPort is { } p ? $"http://127.0.0.1:{p}" : null,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }
    }

    public FakeTimeProvider Clock { get; }

    /// <summary>Extra service registrations applied after the factory's own (set before the server starts).</summary>
    public Action<IServiceCollection>? ConfigureExtraServices { get; set; }

    public StripeSandbox Stripe => Services.GetRequiredService<StripeSandbox>();

    public PostmarkSandbox Postmark => Services.GetRequiredService<PostmarkSandbox>();

    public IGrainFactory Grains => Services.GetRequiredService<IGrainFactory>();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            if (value is not null)
            {
                builder.UseSetting(key, value);
            }
        }
        builder.ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        builder.ConfigureTestServices(services =>
        {
            services.AddSingleton<TimeProvider>(Clock);
            services.UseTimeProviderForBackgroundAreas(TimeProvider.System);
            // A graceful stop (grains deactivated, state written) takes under a second alone, but the whole suite runs
            // beside chromium and many PostgreSQL clusters on two cores: the default 30 s cut one short there.
            services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2));
            // Handlers that never expire: an expired handler is held by the client factory's process-wide cleanup timer
            // until nothing references it, and here it references the test server, which references it back.
            services.ConfigureAll<HttpClientFactoryOptions>(o => o.HandlerLifetime = Timeout.InfiniteTimeSpan);
            if (!_kestrel)
            {
                foreach (var name in new[] { EscrowHosting.StripeHttpClient, EscrowHosting.PostmarkHttpClient, SandboxOptions.WebhookHttpClientName })
                {
                    services.AddHttpClient(name).ConfigurePrimaryHttpMessageHandler(sp => new DeferredTestServerHandler(sp));
                }
            }
            services.PostConfigure<SandboxOptions>(o =>
            {
                if (!_kestrel)
                {
                    o.WebhookUrl = new Uri("http://localhost/webhooks/stripe");
                }
                o.WebhookFirstRetryDelay = TimeSpan.FromSeconds(1);
            });
            ConfigureExtraServices?.Invoke(services);
        });
    }

    public HttpClient Platform() => WithKey(PlatformKey);

    public HttpClient Admin() => WithKey(AdminKey);

    public HttpClient Anonymous() => CreateClient();

    private HttpClient WithKey(string key)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Add("X-Api-Key", key);
        return client;
    }

    public async Task<JsonElement> PutRecipientAsync(string id, long basePriceMinor = 1_000, int? dailyLimit = null, string email = "alice@example.com")
    {
        var response = await Platform().PutAsJsonAsync($"/v1/recipients/{id}", new { email, displayName = "Alice", basePriceMinor, currency = "EUR", dailyLimit });
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    public async Task EnablePayoutsAsync(string recipientId)
    {
        var link = await Platform().PostAsync($"/v1/recipients/{recipientId}/onboarding-link", null);
        link.EnsureSuccessStatusCode();
        var accountId = (await link.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("accountId").GetString()!;
        Stripe.EnablePayouts(accountId);
        await Eventually.UntilAsync(async () => (await GetRecipientAsync(recipientId)).GetProperty("payoutsEnabled").GetBoolean(), $"payouts of {recipientId} enabled");
    }

    public async Task<JsonElement> GetRecipientAsync(string id) =>
        await (await Platform().GetAsync($"/v1/recipients/{id}")).Content.ReadFromJsonAsync<JsonElement>();

    public Task<HttpResponseMessage> PostEscrowAsync(object body, string? idempotencyKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows") { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return Anonymous().SendAsync(request);
    }

    public static object EscrowBody(string recipientId, string? paymentMethodId = "pm_card_visa", string window = "PT24H") =>
        new { recipientId, senderEmail = "bob@example.com", responseWindow = window, subject = "A question", message = "Hello, could you answer this question?", paymentMethodId };

    public async Task<JsonElement> CreateHeldEscrowAsync(string recipientId, string? key = null, string window = "PT24H")
    {
        var response = await PostEscrowAsync(EscrowBody(recipientId, window: window), key ?? Guid.NewGuid().ToString());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, body.ToString());
        Assert.Equal("held", body.GetProperty("status").GetString());
        return body;
    }

    public async Task<JsonElement> GetEscrowAsync(Guid id) =>
        await (await Platform().GetAsync($"/v1/escrows/{id}")).Content.ReadFromJsonAsync<JsonElement>();

    public Task<JsonElement> WaitForStatusAsync(Guid id, string status) =>
        Eventually.UntilAsync(() => GetEscrowAsync(id), e => e.GetProperty("status").GetString() == status, $"escrow {id} {status}");

    /// <summary>
    /// The reply token from the Reply-To of the recipient's new-message email in the Postmark outbox, once it is there:
    /// the escrow sends its e-mails right after it answers the create.
    /// </summary>
    public async Task<string> ReplyTokenOfAsync(Guid escrowId)
    {
        bool IsNewMessage(SandboxEmail m) =>
            m.Tag == "new-message" && m.ReplyTo is not null && m.ReplyTo.Contains(escrowId.ToString("N"), StringComparison.Ordinal);
        await Eventually.UntilAsync(() => Task.FromResult(Postmark.Outbox.Any(IsNewMessage)), $"the new-message email of escrow {escrowId}");
        return Postmark.Outbox.Single(IsNewMessage).ReplyTo!.Split('+', '@')[1];
    }

    public Task<HttpResponseMessage> PostInboundAsync(object mail, string user = InboundUser, string password = InboundPassword)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/webhooks/postmark/inbound") { Content = JsonContent.Create(mail) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        return Anonymous().SendAsync(request);
    }

    public static object InboundReply(string token, string from = "alice@example.com", string? messageId = null, string text = "Here is my answer.") => new
    {
        MessageID = messageId ?? Guid.NewGuid().ToString(),
        From = from,
        FromFull = new { Email = from, Name = "Alice" },
        To = $"reply+{token}@reply.test",
        MailboxHash = token,
        Subject = "Re: A question",
        TextBody = text + "\n\nOn ... wrote:\n> Hello",
        StrippedTextReply = text,
        Headers = Array.Empty<object>(),
    };
}
