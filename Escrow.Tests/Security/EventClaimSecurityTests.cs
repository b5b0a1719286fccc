using System.Text.Json.Nodes;
using Escrow.Grains.Payments;
using Escrow.Tests.Domain;
using Escrow.Tests.Grains;
using ContractHelpers = Escrow.Tests.Api.Contract.Contract;

namespace Escrow.Tests.Security;

/// <summary>
/// The machine believes a payment or transfer event only for the escrow's own objects: a signed event whose metadata
/// names an escrow proves only that Stripe sent it. Each refusal leaves the state as it was.
/// </summary>
public sealed class EventClaimRuleTests
{
    private static readonly DateTimeOffset Later = AnEscrow.T0.AddHours(3);

    private static void AssertRefusedUnchanged(EscrowState s, EscrowCommand forged, string code)
    {
        var decision = s.Decide(forged, Later);
        Assert.False(decision.Accepted);
        Assert.Equal(code, decision.Rejection!.Code);
        Assert.Same(s, decision.State);
    }

    public static TheoryData<EscrowStatus> StatusesWithAPaymentIntent =>
        [EscrowStatus.Held, EscrowStatus.Processing, EscrowStatus.RefundPending, EscrowStatus.TransferFailed, EscrowStatus.Released, EscrowStatus.Refunded];

    [Theory]
    [MemberData(nameof(StatusesWithAPaymentIntent))]
    public void A_cancel_event_for_another_payment_intent_does_not_refund_the_escrow(EscrowStatus status) =>
        AssertRefusedUnchanged(AnEscrow.In(status), new AuthorisationVoided("requested_by_customer", "pi_attacker"), "payment_intent_mismatch");

    [Theory]
    [MemberData(nameof(StatusesWithAPaymentIntent))]
    public void A_payment_failed_event_for_another_payment_intent_changes_nothing(EscrowStatus status) =>
        AssertRefusedUnchanged(AnEscrow.In(status), new PaymentFailed("card_declined", PaymentIntentId: "pi_attacker"), "payment_intent_mismatch");

    [Fact]
    public void A_decline_event_for_another_payment_intent_does_not_count_against_the_sender() =>
        AssertRefusedUnchanged(AnEscrow.Declined(), new PaymentFailed("card_declined", PaymentIntentId: "pi_attacker"), "payment_intent_mismatch");

    [Fact]
    public void An_authorisation_for_another_payment_intent_after_the_unpaid_expiry_changes_nothing()
    {
        var cancelled = AnEscrow.PaymentFailed();
        Assert.NotNull(cancelled.PaymentIntentId);
        AssertRefusedUnchanged(cancelled, new PaymentAuthorised("pi_attacker", cancelled.Amount.Minor, cancelled.Amount.Currency.Code), "payment_intent_mismatch");
    }

    [Fact]
    public void The_escrows_own_cancel_is_still_believed()
    {
        var decision = AnEscrow.Held().Decide(new AuthorisationVoided("automatic", AnEscrow.PaymentIntentId), Later);
        Assert.True(decision.Accepted);
        Assert.Equal(EscrowStatus.Refunded, decision.State.Status);
    }

    [Theory]
    [InlineData("acct_attacker", AnEscrow.AccountId, "eur", 0)] // another account
    [InlineData(AnEscrow.AccountId, AnEscrow.AccountId, "usd", 0)] // another currency
    [InlineData(AnEscrow.AccountId, AnEscrow.AccountId, "eur", -1)] // less than the share
    [InlineData("acct_attacker", null, "eur", 0)] // a recipient without an account
    public void A_reported_transfer_that_is_not_the_recipients_share_is_not_adopted(string destination, string? recipientAccount, string currency, long offset)
    {
        foreach (var s in new[] { AnEscrow.TransferFailed(), AnEscrow.Captured(), AnEscrow.TransferFailed().Then(new OperatorRefund("sender asked"), Later) })
        {
            var share = s.Split.RecipientShare.Minor;
            AssertRefusedUnchanged(s, new TransferReported("tr_attacker", share + offset, currency, destination, recipientAccount), "transfer_mismatch");
        }
    }

    [Fact]
    public void The_recipients_own_transfer_is_still_adopted()
    {
        var s = AnEscrow.TransferFailed();
        var decision = s.Decide(new TransferReported("tr_lost", s.Split.RecipientShare.Minor, "eur", AnEscrow.AccountId, AnEscrow.AccountId), Later);
        Assert.True(decision.Accepted);
        Assert.Equal(EscrowStatus.Released, decision.State.Status);
    }
}

/// <summary>The grain's transfer retry looks the transfer group up: it adopts only the recipient's own share.</summary>
public sealed class TransferAdoptionSecurityTests(GrainClusterFixture f) : IClassFixture<GrainClusterFixture>
{
    [Fact]
    public async Task A_transfer_planted_in_the_escrows_group_to_another_account_is_not_adopted_and_alerts()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, _) = await f.NewHeldEscrowAsync(recipient);
        f.Payments.FailNext("transfer", PaymentErrorKind.Transient);
        await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", null));
        var failed = (await grain.GetAsync())!;
        Assert.Equal("transfer_failed", failed.Status);
        var planted = new TransferInfo("tr_planted_" + id.ToString("N")[..8], failed.RecipientShareMinor, failed.Currency, "acct_attacker", failed.ChargeId);
        f.Payments.PlantTransfer(id, planted);

        f.Clock.SetUtcNow(failed.NextTransferAttemptAt!.Value);
        var released = (await Eventually.UntilAsync(async () => await grain.GetAsync(), v => v!.Status == "released", "released"))!;

        Assert.NotEqual(planted.Id, released.TransferId);
        var paid = Assert.Single(f.Payments.Transfers, t => t.Id == released.TransferId);
        Assert.NotEqual("acct_attacker", paid.DestinationAccountId);
        Assert.DoesNotContain(released.History, h => h.Event == "transfer_adopted");
        Assert.Contains(await f.Store.ListAlertsAsync(true, 1000), a => a.EscrowId == id && a.Kind == "transfer_mismatch");
    }
}

/// <summary>Attacks through the webhook: signed events that name a victim's escrow.</summary>
public sealed class ForgedStripeEventSecurityTests(InMemoryApiFixture fixture) : IClassFixture<InMemoryApiFixture>
{
    private EscrowApiFactory App => fixture.Factory;

    [Theory]
    [InlineData("payment_intent.canceled")]
    [InlineData("payment_intent.payment_failed")]
    public async Task A_signed_event_for_another_payment_intent_naming_a_held_escrow_changes_nothing_and_alerts(string type)
    {
        var victim = (await App.CreateHeldEscrowAsync(await App.NewRecipientAsync())).GetProperty("id").GetGuid();
        // The attacker's own PaymentIntent, its metadata rewritten to name the victim's escrow.
        var own = await App.CreateHeldEscrowAsync(await App.NewRecipientAsync());
        var pi = await App.PaymentIntentJsonAsync(own.GetProperty("paymentIntentId").GetString()!);
        pi["metadata"] = new JsonObject { ["escrow_id"] = victim.ToString() };
        pi["transfer_group"] = victim.ToString();
        pi["status"] = type == "payment_intent.canceled" ? "canceled" : "requires_payment_method";
        pi["cancellation_reason"] = type == "payment_intent.canceled" ? "requested_by_customer" : null;

        var response = await App.PostSignedStripeEventAsync(App.EventJson(type, pi));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ignored:payment_intent_mismatch", (await ContractHelpers.JsonOf(response)).GetProperty("outcome").GetString());
        Assert.Equal("held", await App.StatusOf(victim));
        Assert.Single(await App.AlertsOfAsync(victim, "payment_mismatch"));
    }
}
