namespace Escrow.Tests.Domain;

// Payment: the PaymentIntent and its authorisation, declines and other cards, the unpaid expiry, currencies.
public sealed partial class LifecycleTests
{
    [Fact]
    public void Payment_intent_that_needs_a_payment_method_stays_awaiting_payment_until_authorised()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.Equal("secret", s.ClientSecret);
        s = s.Then(new PaymentAuthorised("pi_1", 15_00, "EUR"), T0.AddMinutes(2));
        Assert.Equal(EscrowStatus.Held, s.Status);
    }

    [Fact]
    public void Authorisation_of_another_payment_intent_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        var d = s.Decide(new PaymentAuthorised("pi_other", 15_00, "EUR"), T0.AddMinutes(2));
        d.AssertRefused("payment_intent_mismatch", unchanged: s);
    }

    [Fact]
    public void Authorisation_of_the_wrong_amount_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentAuthorised("pi_1", 14_99, "EUR"), T0.AddMinutes(2));
        d.AssertRefused("amount_mismatch", unchanged: s);
        var usd = s.Decide(new PaymentAuthorised("pi_1", 15_00, "USD"), T0.AddMinutes(2));
        Assert.Equal("amount_mismatch", usd.Rejection?.Code);
    }

    /// <summary>
    /// A rejection changes nothing (STYLE 2). A created PaymentIntent that is already authorised for the wrong
    /// amount must be rejected with the input state, not with a state that already recorded the intent.
    /// </summary>
    [Fact]
    public void Payment_intent_created_with_the_wrong_amount_is_rejected_and_changes_nothing()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_capture", 99_99, "EUR"), T0.AddSeconds(1));
        Assert.Equal("amount_mismatch", d.Rejection?.Code);
        Assert.Equal(s.Outbox.ToArray(), d.State.Outbox.ToArray());
        Assert.Equal(s.History.ToArray(), d.State.History.ToArray());
        Assert.Null(d.State.PaymentIntentId);
        Assert.True(ReferenceEquals(s, d.State) || s.Equals(d.State));
    }

    [Fact]
    public void Payment_intent_created_for_an_unknown_effect_is_rejected()
    {
        var s = AnEscrow.AwaitingPayment();
        var d = s.Decide(new PaymentIntentCreated(404, "pi_1", "secret", "requires_capture", 15_00, "EUR"), T0.AddSeconds(1));
        d.AssertRefused("unknown_effect", unchanged: s);
    }

    [Fact]
    public void An_authorisation_reported_after_the_escrow_was_cancelled_without_knowing_its_payment_intent_is_cancelled()
    {
        // The create's answer was lost (no PaymentIntent id kept), then the escrow was cancelled; Stripe had authorised the card.
        var created = EscrowMachine.Create(AnEscrow.New(), AnEscrow.T0);
        Assert.Null(created.PaymentIntentId);
        var cancelled = created.Then(new OperatorRefund("sender asked"), AnEscrow.T0.AddSeconds(10));
        Assert.Equal(EscrowStatus.Cancelled, cancelled.Status);
        Assert.False(cancelled.Has(EffectKind.CancelPaymentIntent));

        var at = AnEscrow.T0.AddMinutes(2);
        var s = cancelled.Then(new PaymentAuthorised("pi_stray", cancelled.Amount.Minor, cancelled.Amount.Currency.Code), at);
        Assert.Equal(EscrowStatus.Cancelled, s.Status);
        Assert.Equal("pi_stray", s.PaymentIntentId);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.Equal("stray_authorisation_cancelled", s.History[^1].Event);

        // The same event again changes nothing; the cancel completes as for any cancelled escrow.
        Assert.False(s.Decide(new PaymentAuthorised("pi_stray", s.Amount.Minor, s.Amount.Currency.Code), at.AddMinutes(1)).Accepted);
        s = s.Then(new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent)), at.AddMinutes(1));
        Assert.False(s.Has(EffectKind.CancelPaymentIntent));
    }

    [Fact]
    public void A_declined_card_keeps_the_escrow_awaiting_payment_with_its_payment_intent_its_slot_and_no_email()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentFailed("card_declined", s.EffectId(EffectKind.CreatePaymentIntent), AnEscrow.PaymentIntentId, "pi_secret"), T0.AddMinutes(1));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.False(s.IsTerminal);
        Assert.Empty(s.Outbox);
        Assert.Equal("card_declined", s.LastPaymentError);
        Assert.Equal(AnEscrow.PaymentIntentId, s.PaymentIntentId);
        Assert.Equal("pi_secret", s.ClientSecret);
        Assert.Equal(("payment_declined", "card_declined"), (s.History[^1].Event, s.History[^1].Detail));
        // The webhook of the same decline changes nothing; one for another PaymentIntent is refused.
        Assert.Equal("already_done", s.Decide(new PaymentFailed("card_declined", PaymentIntentId: AnEscrow.PaymentIntentId), T0.AddMinutes(2)).Rejection?.Code);
        Assert.Equal("payment_intent_mismatch", s.Decide(new PaymentFailed("expired_card", PaymentIntentId: "pi_other"), T0.AddMinutes(2)).Rejection?.Code);
        Assert.Equal(s.UnpaidExpiresAt, EscrowMachine.NextDueAt(s));
    }

    [Fact]
    public void After_a_decline_another_card_confirms_the_same_payment_intent_and_its_authorisation_holds_the_escrow()
    {
        var s = AnEscrow.Declined();
        Assert.Equal("already_done", s.Decide(new RetryPayment("pm_card_visa"), T0.AddMinutes(2)).Rejection?.Code);
        s = s.Then(new RetryPayment("pm_card_mastercard"), T0.AddMinutes(2));
        var confirm = Assert.Single(s.Outbox);
        Assert.Equal((EffectKind.ConfirmPayment, "pm_card_mastercard"), (confirm.Kind, confirm.Payload));
        Assert.Equal("already_done", s.Decide(new RetryPayment("pm_card_amex"), T0.AddMinutes(2)).Rejection?.Code);

        // Declined again: still awaiting, the retry done.
        var again = s.Then(new PaymentFailed("insufficient_funds", confirm.Id, AnEscrow.PaymentIntentId), T0.AddMinutes(3));
        Assert.Equal((EscrowStatus.AwaitingPayment, "insufficient_funds", 2), (again.Status, again.LastPaymentError, again.PaymentDeclines));
        Assert.Empty(again.Outbox);

        var held = s.Then(new PaymentAuthorised(AnEscrow.PaymentIntentId, s.Amount.Minor, s.Amount.Currency.Code, confirm.Id), T0.AddMinutes(3));
        Assert.Equal(EscrowStatus.Held, held.Status);
        Assert.False(held.Has(EffectKind.ConfirmPayment));
        Assert.True(held.HasEmail(EmailKind.NewMessage));
    }

    [Fact]
    public void A_declined_escrow_fails_only_at_the_unpaid_expiry_cancelling_its_payment_intent_and_freeing_the_slot()
    {
        var s = AnEscrow.Declined();
        Assert.Equal("not_due_yet", s.Decide(new UnpaidExpired(), s.UnpaidExpiresAt.AddSeconds(-1)).Rejection?.Code);
        s = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.PaymentFailed, s.Status);
        Assert.True(s.IsTerminal);
        Assert.Equal(new[] { EffectKind.CancelPaymentIntent, EffectKind.ReleaseDailySlot }, s.Outbox.Select(e => e.Kind).ToArray());
        Assert.Equal(("payment_failed", "card_declined"), (s.History[^1].Event, s.History[^1].Detail));
        Assert.Equal("already_done", s.Decide(new PaymentFailed("card_declined"), s.UnpaidExpiresAt.AddMinutes(1)).Rejection?.Code);
        Assert.False(s.HasEmail(EmailKind.NewMessage));
    }

    [Fact]
    public void Declines_are_bounded_a_retry_after_the_last_is_refused()
    {
        var s = AnEscrow.Declined();
        for (var i = 1; i < EscrowState.PaymentDeclinesMax; i++)
        {
            s = s.Then(new RetryPayment($"pm_card_{i}"), T0.AddMinutes(2 + i));
            s = s.Then(new PaymentFailed("card_declined", s.EffectId(EffectKind.ConfirmPayment)), T0.AddMinutes(2 + i));
        }
        Assert.Equal(EscrowState.PaymentDeclinesMax, s.PaymentDeclines);
        Assert.Equal("too_many_payment_attempts", s.Decide(new RetryPayment("pm_card_last"), T0.AddMinutes(30)).Rejection?.Code);
        Assert.Equal("already_done", s.Decide(new PaymentFailed("expired_card"), T0.AddMinutes(30)).Rejection?.Code);
    }

    [Fact]
    public void Unpaid_escrow_expires_only_at_or_after_its_unpaid_expiry()
    {
        var s = AnEscrow.AwaitingPayment();
        Assert.Equal("not_due_yet", s.Decide(new UnpaidExpired(), s.UnpaidExpiresAt.AddTicks(-1)).Rejection?.Code);
        Assert.Empty(EscrowMachine.DueCommands(s, s.UnpaidExpiresAt.AddTicks(-1)));
        Assert.IsType<UnpaidExpired>(Assert.Single(EscrowMachine.DueCommands(s, s.UnpaidExpiresAt)));

        var cancelled = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.Cancelled, cancelled.Status);
        Assert.Equal(new[] { EffectKind.ReleaseDailySlot }, cancelled.Outbox.Select(e => e.Kind).ToArray());
        Assert.True(s.Then(new UnpaidExpired(), s.UnpaidExpiresAt.AddHours(1)).IsTerminal);
    }

    [Fact]
    public void Unpaid_expiry_after_a_payment_intent_exists_cancels_the_intent()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_payment_method", 15_00, "EUR"), T0.AddSeconds(1));
        s = s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
        Assert.Equal(EscrowStatus.Cancelled, s.Status);
        Assert.True(s.Has(EffectKind.CancelPaymentIntent));
        Assert.True(s.Has(EffectKind.ReleaseDailySlot));
    }

    [Fact]
    public void A_yen_escrow_keeps_its_currency_in_the_split_and_checks_it_on_authorisation()
    {
        var yen = new Money(1_500, Currency.Parse("JPY"));
        var s = AnEscrow.AwaitingPayment(yen);
        Assert.Equal(Currency.Parse("JPY"), s.Split.RecipientShare.Currency);
        Assert.Equal("amount_mismatch", s.Decide(new PaymentAuthorised("pi_1", 1_500, "EUR"), T0.AddMinutes(1)).Rejection?.Code);
        Assert.Equal(EscrowStatus.Held, s.Then(new PaymentAuthorised("pi_1", 1_500, "jpy"), T0.AddMinutes(1)).Status);
    }
}
