namespace Escrow.Tests.Api.Lifecycle;

/// <summary>
/// A declined card leaves Stripe's PaymentIntent in requires_payment_method, confirmable again: the escrow waits for
/// another card until its unpaid expiry, on the same PaymentIntent.
/// </summary>
public sealed class DeclineRetryTests
{
    [Fact]
    public async Task A_declined_create_retried_with_the_same_key_and_another_card_is_held_replied_to_and_released_on_one_payment_intent()
    {
        await using var app = await LifecycleApp.StartAsync("decline_retry");
        var recipient = await app.PayableRecipientAsync();
        var key = Guid.NewGuid().ToString();

        var declined = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_chargeDeclinedInsufficientFunds"), key);
        Assert.Equal(HttpStatusCode.PaymentRequired, declined.StatusCode);
        var problem = await declined.Content.ReadFromJsonAsync<JsonElement>();
        var id = problem.GetProperty("escrowId").GetGuid();
        var paymentIntentId = problem.GetProperty("paymentIntentId").GetString()!;
        Assert.Equal("awaiting_payment", problem.GetProperty("escrowStatus").GetString());
        Assert.Equal("card_declined", problem.GetProperty("lastPaymentError").GetString());
        Assert.DoesNotContain(app.Postmark.Outbox, m => m.Tag == "new-message");

        var retried = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_visa"), key);
        var held = await retried.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(retried.StatusCode == HttpStatusCode.Created, held.ToString());
        Assert.Equal(("held", id, paymentIntentId), (held.Status(), held.Id(), held.PaymentIntentId()));
        Assert.Equal(problem.GetProperty("accessToken").GetString(), held.GetProperty("accessToken").GetString());

        Assert.Equal("accepted", await app.EmailReplyAsync(id));
        var released = await app.WaitForStatusAsync(id, "released");

        Assert.Equal(1, app.PaymentIntentsFor(id));
        Assert.Single(app.SucceededCaptures(paymentIntentId));
        Assert.Single(app.TransfersOf(id));
        Assert.Contains("payment_declined", released.Events());
        Assert.Contains("payment_retried", released.Events());
        Assert.Single(app.Postmark.Outbox, m => m.Tag == "new-message" && m.ReplyTo!.Contains(id.ToString("N"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_declined_payment_intent_confirmed_by_the_sender_with_its_client_secret_holds_the_escrow()
    {
        await using var app = await LifecycleApp.StartAsync("decline_client_confirm");
        var recipient = await app.PayableRecipientAsync();
        var declined = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_chargeDeclined"), Guid.NewGuid().ToString());
        var problem = await declined.Content.ReadFromJsonAsync<JsonElement>();
        var id = problem.GetProperty("escrowId").GetGuid();
        var paymentIntentId = problem.GetProperty("paymentIntentId").GetString()!;

        // What Stripe.js does in the sender's browser: confirm the same PaymentIntent with another card.
        var stripe = app.Anonymous();
        stripe.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "sk_test_sender_browser");
        var confirm = await stripe.PostAsync($"/_sandbox/stripe/v1/payment_intents/{paymentIntentId}/confirm", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["payment_method"] = "pm_card_visa",
            ["client_secret"] = problem.GetProperty("clientSecret").GetString()!,
        }));
        Assert.Equal(HttpStatusCode.OK, confirm.StatusCode);

        var held = await app.WaitForStatusAsync(id, "held");
        Assert.Equal(paymentIntentId, held.PaymentIntentId());
        Assert.Equal(1, app.PaymentIntentsFor(id));
    }

    [Fact]
    public async Task A_declined_escrow_fails_at_its_unpaid_expiry_its_payment_intent_cancelled_and_takes_no_slot()
    {
        await using var app = await LifecycleApp.StartAsync("decline_expiry");
        var recipient = await app.PayableRecipientAsync(dailyLimit: 1);
        var key = Guid.NewGuid().ToString();
        var declined = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_chargeDeclined"), key);
        var problem = await declined.Content.ReadFromJsonAsync<JsonElement>();
        var id = problem.GetProperty("escrowId").GetGuid();
        var paymentIntentId = problem.GetProperty("paymentIntentId").GetString()!;
        // Declined, it takes none of the day's slots: another unpaid create is accepted beside it.
        Assert.Equal(HttpStatusCode.Created, (await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: null), Guid.NewGuid().ToString())).StatusCode);

        app.Clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(1));
        await app.WakeAllAsync([id]);
        var failed = await app.WaitForAsync(id, e => e.Status() == "payment_failed" && e.GetProperty("history").GetArrayLength() > 0, "payment_failed");

        Assert.Equal("card_declined", failed.GetProperty("lastPaymentError").GetString());
        await app.WaitForAsync(id, _ => app.Stripe.GetPaymentIntent(paymentIntentId)!.Status == "canceled", "its PaymentIntent cancelled");
        Assert.DoesNotContain(app.Postmark.Outbox, m => m.Tag == "new-message");
        var again = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient, paymentMethodId: "pm_card_visa"), key);
        Assert.Equal(HttpStatusCode.PaymentRequired, again.StatusCode);
        await app.CreateHeldEscrowAsync(recipient);
        Assert.Equal(id, EscrowEndpoints.EscrowIdFor(key));
    }
}
