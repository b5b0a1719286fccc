using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Logging;
using Stripe;

namespace Escrow.Tests.Sandbox;

/// <summary>A minimal web app on TestServer hosting the sandbox, a webhook receiver and a real Stripe.net client.</summary>
internal sealed class SandboxTestHost : IAsyncDisposable
{
    public const string WebhookSecret = "whsec_sandbox_test_secret";
    public const string ConnectWebhookSecret = "whsec_sandbox_test_connect_secret";
    public const string PostmarkToken = "postmark-test-token";
    public const string ApiBase = "http://localhost/_sandbox/stripe";

    private SandboxTestHost(WebApplication app)
    {
        App = app;
        Server = (TestServer)app.Services.GetRequiredService<IServer>();
        Http = Server.CreateClient();
        Stripe = CreateStripeClient("sk_test_sandbox");
        Sandbox = app.Services.GetRequiredService<StripeSandbox>();
        Postmark = app.Services.GetRequiredService<PostmarkSandbox>();
        Receiver = app.Services.GetRequiredService<WebhookReceiver>();
    }

    public WebApplication App { get; }
    public TestServer Server { get; }
    public HttpClient Http { get; }
    public StripeClient Stripe { get; }
    public StripeSandbox Sandbox { get; }
    public PostmarkSandbox Postmark { get; }
    public WebhookReceiver Receiver { get; }

    public static async Task<SandboxTestHost> StartAsync(Action<SandboxOptions>? configure = null, TimeProvider? clock = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        if (clock is not null)
        {
            builder.Services.AddSingleton(clock);
        }
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<WebhookReceiver>();
        builder.Services.AddEscrowSandbox(o =>
        {
            o.WebhookSecret = WebhookSecret;
            o.ConnectWebhookSecret = ConnectWebhookSecret;
            o.PostmarkServerToken = PostmarkToken;
            o.WebhookUrl = new Uri("http://localhost/webhooks/stripe");
            o.WebhookFirstRetryDelay = TimeSpan.FromMilliseconds(10);
            o.WebhookMaxAttempts = 4;
            configure?.Invoke(o);
        });
        builder.Services.AddHttpClient(SandboxOptions.WebhookHttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => ((TestServer)sp.GetRequiredService<IServer>()).CreateHandler());

        var app = builder.Build();
        app.MapStripeSandbox();
        app.MapPostmarkSandbox();
        app.MapPost("/webhooks/stripe", (HttpRequest request, WebhookReceiver receiver) => receiver.HandleAsync(request));
        await app.StartAsync();
        return new SandboxTestHost(app);
    }

    public StripeClient CreateStripeClient(string apiKey) =>
        new(apiKey, httpClient: new SystemNetHttpClient(Server.CreateClient(), 0, null, false), apiBase: ApiBase);

    public static RequestOptions Key(string idempotencyKey) => new() { IdempotencyKey = idempotencyKey };

    /// <summary>Creates a manual-capture PaymentIntent authorised with pm_card_visa.</summary>
    public Task<PaymentIntent> AuthoriseAsync(long amount, string key, string? transferGroup = null) =>
        new PaymentIntentService(Stripe).CreateAsync(new PaymentIntentCreateOptions
        {
            Amount = amount,
            Currency = "eur",
            CaptureMethod = "manual",
            PaymentMethod = "pm_card_visa",
            Confirm = true,
            TransferGroup = transferGroup,
            Metadata = new Dictionary<string, string> { ["escrow_id"] = transferGroup ?? "none" },
        }, Key(key));

    /// <summary>Captures the whole of an authorised PaymentIntent under <paramref name="key"/>.</summary>
    public Task<PaymentIntent> CaptureAsync(string paymentIntentId, string key) =>
        new PaymentIntentService(Stripe).CaptureAsync(paymentIntentId, new PaymentIntentCaptureOptions(), Key(key));

    /// <summary>Creates an Express account and, unless told otherwise, completes its onboarding.</summary>
    public async Task<Account> CreateAccountAsync(bool enablePayouts)
    {
        var account = await new AccountService(Stripe).CreateAsync(new AccountCreateOptions
        {
            Type = "express",
            Country = "FR",
            Email = "expert@example.com",
            Capabilities = new AccountCapabilitiesOptions
            {
                Transfers = new AccountCapabilitiesTransfersOptions { Requested = true },
            },
        }, Key("acct-" + Guid.NewGuid()));
        if (enablePayouts)
        {
            using var response = await Http.PostAsync($"/_sandbox/stripe/accounts/{account.Id}/enable-payouts", null);
            response.EnsureSuccessStatusCode();
        }

        return account;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>The test's Stripe webhook endpoint: verifies signatures with Stripe.net and records events.</summary>
internal sealed class WebhookReceiver
{
    private readonly ConcurrentQueue<Event> _accepted = new();
    private readonly ConcurrentQueue<Event> _acceptedWithConnectSecret = new();
    private readonly ConcurrentQueue<string> _rejected = new();
    private Func<Event, bool> _shouldFail = _ => false;
    private int _failuresLeft;

    public IReadOnlyList<Event> Accepted => [.. _accepted];

    /// <summary>The accepted events whose signature was made with the Connect endpoint's secret.</summary>
    public IReadOnlyList<Event> AcceptedWithConnectSecret => [.. _acceptedWithConnectSecret];
    public IReadOnlyList<string> Rejected => [.. _rejected];

    /// <summary>Answers 500 to the next <paramref name="times"/> valid deliveries.</summary>
    public void FailNext(int times) => Interlocked.Exchange(ref _failuresLeft, times);

    /// <summary>Answers 500 to every valid delivery matching <paramref name="predicate"/>.</summary>
    public void FailWhen(Func<Event, bool> predicate) => _shouldFail = predicate;

    public async Task<IResult> HandleAsync(HttpRequest request)
    {
        using var reader = new StreamReader(request.Body);
        var json = await reader.ReadToEndAsync();
        Event stripeEvent;
        var connect = false;
        try
        {
            stripeEvent = EventUtility.ConstructEvent(json, request.Headers["Stripe-Signature"], SandboxTestHost.WebhookSecret);
        }
        catch (StripeException)
        {
            try
            {
                stripeEvent = EventUtility.ConstructEvent(json, request.Headers["Stripe-Signature"], SandboxTestHost.ConnectWebhookSecret);
                connect = true;
            }
            catch (StripeException ex)
            {
                _rejected.Enqueue(ex.Message);
                return Results.BadRequest();
            }
        }

        if (_shouldFail(stripeEvent) || Interlocked.Decrement(ref _failuresLeft) >= 0)
        {
            return Results.StatusCode(500);
        }

        _accepted.Enqueue(stripeEvent);
        if (connect)
        {
            _acceptedWithConnectSecret.Enqueue(stripeEvent);
        }

        return Results.Ok();
    }
}

internal static class Wait
{
    /// <summary>Waits until <paramref name="condition"/> holds (default 10 s), through the shared polling helper.</summary>
    public static Task UntilAsync(Func<bool> condition, string because, TimeSpan? timeout = null) =>
        Escrow.Testing.Eventually.UntilAsync(() => Task.FromResult(condition()), because, timeout ?? TimeSpan.FromSeconds(10));
}
