namespace Escrow.Tests.Security;

/// <summary>The API with the shipped unpaid caps (the test factory raises them for the other tests).</summary>
public sealed class DefaultUnpaidCapsFixture : InMemoryApiFixture
{
    protected override IDictionary<string, string?>? Settings => new Dictionary<string, string?>
    {
        ["Escrow:UnpaidPerSenderMax"] = null,
        ["Escrow:UnpaidPerRecipientMax"] = null,
    };
}

/// <summary>
/// Anyone may create escrows without paying. These attacks try to use that to block a recipient (their daily limit) or
/// to pile up unpaid escrows; each is refused and leaves no escrow and no PaymentIntent behind.
/// </summary>
public sealed class SlotExhaustionSecurityTests(DefaultUnpaidCapsFixture fixture) : IClassFixture<DefaultUnpaidCapsFixture>
{
    private const int RecipientCap = 10;
    private const int SenderCap = 3;

    private EscrowApiFactory App => fixture.Factory;

    private static object Body(string recipientId, string senderEmail, string? paymentMethodId = null) =>
        new { recipientId, senderEmail, responseWindow = "PT24H", subject = "A question", message = "Hello, could you answer this question?", paymentMethodId };

    private static string NewSender() => $"s-{Guid.NewGuid():N}@example.com";

    private async Task<JsonElement> CreateUnpaidAsync(string recipientId, string senderEmail)
    {
        var response = await App.PostEscrowAsync(Body(recipientId, senderEmail), Guid.NewGuid().ToString());
        var body = await Contract.JsonOf(response);
        Assert.True(response.StatusCode == HttpStatusCode.Created, body.ToString());
        Assert.Equal("awaiting_payment", body.GetProperty("status").GetString());
        return body;
    }

    /// <summary>Posts a create that must be refused with 429 and <paramref name="rejection"/>, and checks it left nothing behind.</summary>
    private async Task AssertRefusedLeavingNothingAsync(object body, string rejection)
    {
        var key = Guid.NewGuid().ToString();
        var paymentIntentsBefore = App.Stripe.PaymentIntents.Count;
        var response = await App.PostEscrowAsync(body, key);
        Assert.Equal(rejection, await Contract.RejectionOf(response, HttpStatusCode.TooManyRequests));
        Assert.Equal(paymentIntentsBefore, App.Stripe.PaymentIntents.Count);
        Assert.Equal(HttpStatusCode.NotFound, (await App.Platform().GetAsync($"/v1/escrows/{EscrowEndpoints.EscrowIdFor(key)}")).StatusCode);
    }

    [Fact]
    public async Task Unpaid_creates_do_not_use_up_a_recipients_daily_limit()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 2);
        for (var i = 0; i < 5; i++)
        {
            await CreateUnpaidAsync(recipient, NewSender());
        }

        // The paying senders still get the day's two slots, and only then is the limit reached.
        await App.CreateHeldEscrowAsync(recipient);
        await App.CreateHeldEscrowAsync(recipient);
        await AssertRefusedLeavingNothingAsync(Body(recipient, NewSender(), "pm_card_visa"), "daily_limit_reached");
    }

    [Fact]
    public async Task Unpaid_creates_past_the_recipients_cap_are_refused_with_too_many_unpaid()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 100);
        for (var i = 0; i < RecipientCap; i++)
        {
            await CreateUnpaidAsync(recipient, NewSender());
        }

        await AssertRefusedLeavingNothingAsync(Body(recipient, NewSender()), "too_many_unpaid");
        await AssertRefusedLeavingNothingAsync(Body(recipient, NewSender(), "pm_card_visa"), "too_many_unpaid");
    }

    [Fact]
    public async Task Unpaid_creates_past_one_senders_cap_are_refused_with_too_many_unpaid_whatever_the_recipient_or_case()
    {
        var sender = NewSender();
        var first = await CreateUnpaidAsync(await App.NewRecipientAsync(), sender);
        for (var i = 1; i < SenderCap; i++)
        {
            await CreateUnpaidAsync(await App.NewRecipientAsync(), sender);
        }

        await AssertRefusedLeavingNothingAsync(Body(await App.NewRecipientAsync(), sender), "too_many_unpaid");
        await AssertRefusedLeavingNothingAsync(Body(await App.NewRecipientAsync(), sender.ToUpperInvariant()), "too_many_unpaid");

        // Paying one of them gives its place back.
        await App.ConfirmInSandboxAsync(first.GetProperty("paymentIntentId").GetString()!);
        await App.WaitForStatusAsync(first.GetProperty("id").GetGuid(), "held");
        await Eventually.UntilAsync(async () => (await App.PostEscrowAsync(Body(await App.NewRecipientAsync(), sender), Guid.NewGuid().ToString())).StatusCode == HttpStatusCode.Created,
            "a create from the sender after one escrow was paid");
    }

    [Fact]
    public async Task An_unpaid_escrow_expires_after_thirty_minutes_and_gives_its_place_back()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 100);
        var sender = NewSender();
        var held = new List<JsonElement>();
        for (var i = 0; i < SenderCap; i++)
        {
            held.Add(await CreateUnpaidAsync(recipient, sender));
        }
        await AssertRefusedLeavingNothingAsync(Body(recipient, sender), "too_many_unpaid");
        App.Clock.Advance(TimeSpan.FromMinutes(29));
        await AssertRefusedLeavingNothingAsync(Body(recipient, sender), "too_many_unpaid");

        App.Clock.Advance(TimeSpan.FromMinutes(2));
        foreach (var escrow in held)
        {
            await App.WaitForStatusAsync(escrow.GetProperty("id").GetGuid(), "cancelled");
        }
        await CreateUnpaidAsync(recipient, sender);
    }
}
