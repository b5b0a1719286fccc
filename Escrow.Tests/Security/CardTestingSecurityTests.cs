using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Escrow.Tests.Security;

/// <summary>
/// The API with the shipped card-testing limits (the test factory raises them for the other tests). The test sets the
/// connection's peer address with an X-Test-Peer header (TestServer has none).
/// </summary>
public sealed class CardTestingFixture : IAsyncLifetime
{
    public const string PeerHeader = TestPeerAddress.Header;

    public EscrowApiFactory Factory { get; private set; } = null!;

    public Task InitializeAsync()
    {
        Factory = new EscrowApiFactory(settings: new Dictionary<string, string?>
        {
            ["RateLimits:DeclinesPerClientMax"] = null,
            ["RateLimits:DeclinesPerWindowAlert"] = null,
        })
        {
            ConfigureExtraServices = services => services.AddSingleton<IStartupFilter>(new TestPeerAddress()),
        };
        _ = Factory.Server;
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await Factory.DisposeAsync();
}

/// <summary>
/// Card testing: the anonymous create confirms a card and answers 402 or 201, which sorts stolen cards. A client that
/// collects three declines in an hour, by address or by sender e-mail, is refused for an hour before any card is tried.
/// </summary>
public sealed class CardTestingSecurityTests(CardTestingFixture fixture) : IClassFixture<CardTestingFixture>
{
    private const string Declined = "pm_card_chargeDeclined";

    private EscrowApiFactory App => fixture.Factory;

    private static int _nextAddress;

    private static string NewAddress() => $"198.51.100.{Interlocked.Increment(ref _nextAddress)}";

    private static string NewSender() => $"s-{Guid.NewGuid():N}@example.com";

    private Task<HttpResponseMessage> CreateAsync(string recipientId, string address, string senderEmail, string paymentMethodId, string? key = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/escrows")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new
            {
                recipientId, senderEmail, responseWindow = "PT24H", subject = "A question", message = "Hello, could you answer this question?", paymentMethodId,
            }),
        };
        request.Headers.Add("Idempotency-Key", key ?? Guid.NewGuid().ToString());
        request.Headers.Add(CardTestingFixture.PeerHeader, address);
        return App.Anonymous().SendAsync(request);
    }

    /// <summary>A create that must be refused with 429 too_many_declines, and leave no escrow and no PaymentIntent behind.</summary>
    private async Task AssertBlockedAsync(string recipientId, string address, string senderEmail)
    {
        var key = Guid.NewGuid().ToString();
        var paymentIntentsBefore = App.Stripe.PaymentIntents.Count;
        var response = await CreateAsync(recipientId, address, senderEmail, "pm_card_visa", key);
        Assert.Equal("too_many_declines", await Contract.RejectionOf(response, HttpStatusCode.TooManyRequests));
        Assert.NotNull(response.Headers.RetryAfter);
        Assert.Equal(paymentIntentsBefore, App.Stripe.PaymentIntents.Count);
        Assert.Equal(HttpStatusCode.NotFound, (await App.Platform().GetAsync($"/v1/escrows/{EscrowEndpoints.EscrowIdFor(key)}")).StatusCode);
    }

    private async Task DeclineAsync(string recipientId, string address, string senderEmail, string? key = null) =>
        Assert.Equal(HttpStatusCode.PaymentRequired, (await CreateAsync(recipientId, address, senderEmail, Declined, key)).StatusCode);

    [Fact]
    public async Task Three_declined_cards_from_one_address_block_its_creates_for_an_hour()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 100);
        var address = NewAddress();
        for (var i = 0; i < 3; i++)
        {
            await DeclineAsync(recipient, address, NewSender());
        }

        await AssertBlockedAsync(recipient, address, NewSender());
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(recipient, NewAddress(), NewSender(), "pm_card_visa")).StatusCode);

        App.Clock.Advance(TimeSpan.FromMinutes(59));
        await AssertBlockedAsync(recipient, address, NewSender());
        App.Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(recipient, address, NewSender(), "pm_card_visa")).StatusCode);
    }

    [Fact]
    public async Task Three_declined_cards_for_one_sender_email_block_it_from_every_address()
    {
        var sender = NewSender();
        var recipient = await App.NewRecipientAsync(dailyLimit: 100);
        for (var i = 0; i < 3; i++)
        {
            await DeclineAsync(recipient, NewAddress(), sender);
        }

        await AssertBlockedAsync(recipient, NewAddress(), sender.ToUpperInvariant());
    }

    [Fact]
    public async Task The_same_declined_request_retried_counts_as_one_decline()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 100);
        var address = NewAddress();
        var key = Guid.NewGuid().ToString();
        var sender = NewSender();
        for (var i = 0; i < 3; i++)
        {
            await DeclineAsync(recipient, address, sender, key);
        }

        Assert.Equal(HttpStatusCode.Created, (await CreateAsync(recipient, address, NewSender(), "pm_card_visa")).StatusCode);
    }

    [Fact]
    public async Task More_than_twenty_declines_in_ten_minutes_raise_card_testing_suspected()
    {
        // A fresh window: declines of the other tests are over ten minutes old.
        App.Clock.Advance(TimeSpan.FromMinutes(11));
        var recipient = await App.NewRecipientAsync(dailyLimit: 1_000);
        async Task<bool> AlertedAsync() => (await App.Store().ListAlertsAsync(openOnly: false, limit: 1_000))
            .Any(a => a.Kind == "card_testing_suspected" && a.CreatedAt >= App.Clock.GetUtcNow() - TimeSpan.FromMinutes(10));

        for (var i = 0; i < 20; i++)
        {
            await DeclineAsync(recipient, NewAddress(), NewSender());
        }
        Assert.False(await AlertedAsync());

        await DeclineAsync(recipient, NewAddress(), NewSender());
        Assert.True(await AlertedAsync());
    }
}
