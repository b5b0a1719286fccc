using System.Text.Json.Nodes;
using ContractHelpers = Escrow.Tests.Api.Contract.Contract;
using Microsoft.AspNetCore.TestHost;

namespace Escrow.Tests.Api.Webhooks;

/// <summary>Each Stripe event type the service handles, duplicates, out-of-order delivery, and a retry after a failed delivery.</summary>
public sealed class StripeEventTypeTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    private async Task<(string Recipient, Guid Id, string PaymentIntent)> HeldAsync(bool payouts = false)
    {
        var recipient = await App.NewRecipientAsync(payouts: payouts);
        var escrow = await App.CreateHeldEscrowAsync(recipient);
        return (recipient, escrow.GetProperty("id").GetGuid(), escrow.GetProperty("paymentIntentId").GetString()!);
    }

    private async Task<HttpResponseMessage> SendAsync(string type, JsonObject dataObject, string? eventId = null) =>
        await App.PostSignedStripeEventAsync(App.EventJson(type, dataObject, eventId));

    [Fact]
    public async Task Payment_failed_leaves_an_unpaid_escrow_awaiting_another_card_without_a_slot_and_sends_no_email()
    {
        var recipient = await App.NewRecipientAsync(dailyLimit: 1);
        var escrow = await App.CreateAwaitingPaymentEscrowAsync(recipient);
        var id = escrow.GetProperty("id").GetGuid();
        var pi = await App.PaymentIntentJsonAsync(escrow.GetProperty("paymentIntentId").GetString()!);
        pi["last_payment_error"] = new JsonObject { ["type"] = "card_error", ["code"] = "card_declined", ["message"] = "Your card was declined." };

        var response = await SendAsync("payment_intent.payment_failed", pi);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var view = await App.GetEscrowAsync(id);
        Assert.Equal(("awaiting_payment", "card_declined"), (view.GetProperty("status").GetString(), view.GetProperty("lastPaymentError").GetString()));
        Assert.Empty(App.MailTo(recipient));
        // A sender may still pay it, but only a payment takes the day's only slot: another sender who pays gets it.
        var other = await App.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), Guid.NewGuid().ToString());
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);
    }

    [Fact]
    public async Task A_payment_failed_event_arriving_after_the_hold_changes_nothing()
    {
        var (_, id, piId) = await HeldAsync();
        var pi = await App.PaymentIntentJsonAsync(piId);
        pi["status"] = "requires_payment_method";

        var response = await SendAsync("payment_intent.payment_failed", pi);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("ignored", (await ContractHelpers.JsonOf(response)).GetProperty("outcome").GetString(), StringComparison.Ordinal);
        Assert.Equal("held", await App.StatusOf(id));
    }

    [Fact]
    public async Task An_authorisation_cancelled_outside_our_flow_ends_the_escrow_with_an_alert_and_tells_both_parties()
    {
        var (recipient, id, piId) = await HeldAsync();
        var pi = await App.PaymentIntentJsonAsync(piId);
        pi["status"] = "canceled";
        pi["cancellation_reason"] = "automatic";

        var response = await SendAsync("payment_intent.canceled", pi);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("refunded", await App.StatusOf(id));
        await Eventually.UntilAsync(async () => (await App.AlertsOfAsync(id, "authorisation_voided")).Count == 1, "authorisation_voided alert");
        bool Sent(string kind, string to) => App.Postmark.Outbox.Any(m => m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D")
            && m.Metadata.GetValueOrDefault("kind") == kind && m.To.Contains(to, StringComparison.OrdinalIgnoreCase));
        await Eventually.UntilAsync(() => Task.FromResult(Sent("payment-voided", "bob@example.com") && Sent("payment-withdrawn", ContractHelpers.EmailOf(recipient))),
            "the sender's and the recipient's e-mails");
    }

    [Fact]
    public async Task A_dispute_stops_automatic_actions_until_an_operator_resolves_it()
    {
        var (_, id, piId) = await HeldAsync();
        var dispute = new JsonObject
        {
            ["id"] = "dp_" + Guid.NewGuid().ToString("N")[..12], ["object"] = "dispute", ["amount"] = 1_500, ["currency"] = "eur",
            ["charge"] = "ch_x", ["payment_intent"] = piId, ["reason"] = "fraudulent", ["status"] = "needs_response", ["created"] = App.UnixNow(),
        };

        var response = await SendAsync("charge.dispute.created", dispute);
        var reply = await App.Platform().PostAsync($"/v1/escrows/{id}/response", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("dispute_open", await ContractHelpers.RejectionOf(reply, HttpStatusCode.Conflict));
        await Eventually.UntilAsync(async () => (await App.AlertsOfAsync(id, "dispute_opened")).Count == 1, "dispute_opened alert");
        var resolved = await App.Admin().PostAsync($"/v1/admin/escrows/{id}/resolve-dispute", null);
        Assert.Equal(HttpStatusCode.OK, resolved.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await App.Platform().PostAsync($"/v1/escrows/{id}/response", null)).StatusCode);
    }

    [Fact]
    public async Task A_reversed_transfer_raises_exactly_one_alert_and_a_ledger_row_and_keeps_the_escrow_released()
    {
        var (_, id, _) = await HeldAsync(payouts: true);
        await App.Platform().PostAsync($"/v1/escrows/{id}/response", null);
        var released = await App.WaitForStatusAsync(id, "released");
        var transferId = released.GetProperty("transferId").GetString()!;
        var transfer = new JsonObject
        {
            ["id"] = transferId, ["object"] = "transfer", ["amount"] = 1_125, ["amount_reversed"] = 1_125, ["currency"] = "eur",
            ["reversed"] = true, ["transfer_group"] = id.ToString(), ["metadata"] = new JsonObject { ["escrow_id"] = id.ToString() }, ["created"] = App.UnixNow(),
        };

        var response = await SendAsync("transfer.reversed", transfer);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("released", await App.StatusOf(id));
        await Eventually.UntilAsync(async () => (await App.AlertsOfAsync(id, "transfer_reversed")).Count == 1, "one transfer_reversed alert");
        var store = App.Services.GetRequiredService<IEscrowStore>();
        await Eventually.UntilAsync(async () => (await store.GetLedgerAsync(id)).Any(l => l.Kind == "transfer_reversed"), "a ledger row");
        Assert.Single(await App.AlertsOfAsync(id, "transfer_reversed"));
    }

    [Fact]
    public async Task A_transfer_reversed_on_an_escrow_that_is_not_released_raises_exactly_one_alert_from_the_escrow_itself()
    {
        var (_, id, _) = await HeldAsync(payouts: true);
        var transfer = new JsonObject
        {
            ["id"] = "tr_not_ours", ["object"] = "transfer", ["amount"] = 1_125, ["amount_reversed"] = 1_125, ["currency"] = "eur",
            ["reversed"] = true, ["transfer_group"] = id.ToString(), ["metadata"] = new JsonObject { ["escrow_id"] = id.ToString() }, ["created"] = App.UnixNow(),
        };

        var response = await SendAsync("transfer.reversed", transfer);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("held", await App.StatusOf(id));
        // Raised through the escrow's outbox before the webhook is answered: one row, named by the escrow and the transfer.
        var alert = Assert.Single(await App.Store().ListAlertsAsync(openOnly: true, limit: 1_000), a => a.EscrowId == id && a.Kind == "transfer_reversed");
        Assert.Equal("critical", alert.Severity);
        Assert.Equal($"transfer_reversed/{id}/tr_not_ours", alert.DedupeKey);
    }

    [Fact]
    public async Task A_transfer_created_event_for_our_own_transfer_is_acknowledged_and_costs_no_inbox_row()
    {
        var (_, id, _) = await HeldAsync(payouts: true);
        await App.Platform().PostAsync($"/v1/escrows/{id}/response", null);
        await App.WaitForStatusAsync(id, "released");
        var created = Assert.Single(App.Stripe.EventsOfType("transfer.created"), e => App.Stripe.GetTransfer(e.ObjectId)!.TransferGroup == id.ToString());
        await Eventually.UntilAsync(() => Task.FromResult(App.Stripe.WebhookAttempts.Any(a => a.EventId == created.Id && a.StatusCode == 200)), "delivered");

        Assert.False(await App.Services.GetRequiredService<IEscrowStore>().IsWebhookProcessedAsync("stripe", created.Id));
        Assert.Single(App.Stripe.Transfers, t => t.TransferGroup == id.ToString());
    }

    [Fact]
    public async Task An_unknown_event_type_is_acknowledged()
    {
        var response = await SendAsync("customer.created", new JsonObject { ["id"] = "cus_1", ["object"] = "customer" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("acknowledged", (await ContractHelpers.JsonOf(response)).GetProperty("outcome").GetString());
    }
}

/// <summary>
/// A delivery whose processing fails gets a 5xx and is processed when Stripe delivers it again. An escrow recognises
/// the Stripe events it applied (it keeps them with the change) and looks in the webhook inbox only before a change:
/// the events that change nothing, our own calls echoed back, cost no read.
/// </summary>
public sealed class StripeRedeliveryTests : IAsyncLifetime
{
    private EscrowApiFactory _factory = null!;
    private WebApplicationFactoryWithFlakyInbox _app = null!;

    public Task InitializeAsync()
    {
        _factory = new EscrowApiFactory();
        _app = new WebApplicationFactoryWithFlakyInbox(_factory);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _factory.DisposeAsync();

    /// <summary>An escrow waiting for its payment, and the body of Stripe's authorisation event for it.</summary>
    private async Task<(string Recipient, Guid Id, string Payload)> AwaitingPaymentAndItsAuthorisationAsync()
    {
        var recipient = await _factory.NewRecipientAsync();
        var escrow = await _factory.CreateAwaitingPaymentEscrowAsync(recipient);
        var payload = await _factory.AuthorisedEventAsync(escrow.GetProperty("paymentIntentId").GetString()!);
        return (recipient, escrow.GetProperty("id").GetGuid(), payload);
    }

    [Fact]
    public async Task A_delivery_that_fails_to_record_answers_5xx_and_the_redelivery_holds_once_and_emails_once()
    {
        var (recipient, id, payload) = await AwaitingPaymentAndItsAuthorisationAsync();
        _app.FailNextRecord();

        var first = await _factory.PostSignedStripeEventAsync(payload);
        var second = await _factory.PostSignedStripeEventAsync(payload);
        var third = await _factory.PostSignedStripeEventAsync(payload);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.StatusCode); // a database failure: Stripe delivers again
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        // The work was done by the failed delivery, and the escrow kept the event with its change: later deliveries are
        // recognised as duplicates although the inbox has no record of the event.
        Assert.True((await ContractHelpers.JsonOf(second)).GetProperty("duplicate").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
        Assert.Equal("held", await _factory.StatusOf(id));
        await Eventually.UntilAsync(() => Task.FromResult(_factory.MailTo(recipient).Count(m => m.Tag == "new-message") == 1), "one new-message email");
        Assert.Single(_factory.MailTo(recipient), m => m.Tag == "new-message");
    }

    [Fact]
    public async Task The_echo_of_our_own_hold_is_answered_without_an_inbox_look_up()
    {
        var recipient = await _factory.NewRecipientAsync();
        var escrow = await _factory.CreateHeldEscrowAsync(recipient);
        var pi = escrow.GetProperty("paymentIntentId").GetString()!;
        var authorised = Assert.Single(_factory.Stripe.EventsOfType("payment_intent.amount_capturable_updated"), e => e.ObjectId == pi);
        await Eventually.UntilAsync(() => Task.FromResult(_factory.Stripe.WebhookAttempts.Any(a => a.EventId == authorised.Id && a.StatusCode == 200)),
            "the authorisation event delivered");

        Assert.Equal(0, _app.LookUps);
        Assert.Equal("held", await _factory.StatusOf(escrow.GetProperty("id").GetGuid()));
    }

    [Fact]
    public async Task An_event_the_inbox_records_as_applied_changes_nothing_when_delivered_again()
    {
        // As for an event applied before the escrow kept the events it applies: only the inbox knows it.
        var (recipient, id, payload) = await AwaitingPaymentAndItsAuthorisationAsync();
        var eventId = JsonNode.Parse(payload)!["id"]!.GetValue<string>();
        var now = _factory.Clock.GetUtcNow();
        await _app.Inner.RecordProcessedWebhookAsync("stripe", eventId, "payment_intent.amount_capturable_updated", now, "applied", now);

        var response = await _factory.PostSignedStripeEventAsync(payload);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True((await ContractHelpers.JsonOf(response)).GetProperty("duplicate").GetBoolean());
        Assert.Equal(1, _app.LookUps);
        Assert.Equal("awaiting_payment", await _factory.StatusOf(id));
        Assert.Empty(_factory.MailTo(recipient));
    }
}

/// <summary>Wraps the factory's store so that recording a processed webhook fails once, as a database blip would.</summary>
public sealed class WebApplicationFactoryWithFlakyInbox
{
    // One per factory: test classes run in parallel, each with its own.
    private FlakyInbox? _current;

    public WebApplicationFactoryWithFlakyInbox(EscrowApiFactory factory) =>
        factory.ConfigureExtraServices = services => services.AddSingleton<IEscrowStore>(_ =>
        {
            var proxy = System.Reflection.DispatchProxy.Create<IEscrowStore, FlakyInbox>();
            _current = (FlakyInbox)(object)proxy;
            _current.Inner = new InMemoryEscrowStore(factory.Clock);
            return proxy;
        });

    public void FailNextRecord() => _current!.FailNext = true;

    /// <summary>Inbox look-ups (<see cref="IEscrowStore.IsWebhookProcessedAsync"/>) so far.</summary>
    public int LookUps => _current!.LookUps;

    /// <summary>The store behind the proxy.</summary>
    public IEscrowStore Inner => _current!.Inner;
}

/// <summary>Forwards every call to the real store, except that the next RecordProcessedWebhookAsync can fail.</summary>
public class FlakyInbox : System.Reflection.DispatchProxy
{
    public IEscrowStore Inner { get; set; } = null!;

    public volatile bool FailNext;

    private int _lookUps;

    public int LookUps => Volatile.Read(ref _lookUps);

    protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args)
    {
        if (targetMethod!.Name == nameof(IEscrowStore.IsWebhookProcessedAsync))
        {
            Interlocked.Increment(ref _lookUps);
        }
        if (targetMethod!.Name == nameof(IEscrowStore.RecordProcessedWebhookAsync) && FailNext)
        {
            FailNext = false;
            return Task.FromException(new TimeoutException("injected: the inbox write timed out"));
        }
        return targetMethod.Invoke(Inner, args);
    }
}
