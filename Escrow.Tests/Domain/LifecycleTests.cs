namespace Escrow.Tests.Domain;

public sealed partial class LifecycleTests
{
    private static readonly DateTimeOffset T0 = AnEscrow.T0;

    [Fact]
    public void Create_awaits_payment_with_a_create_payment_intent_effect_and_the_split_fixed()
    {
        var s = AnEscrow.AwaitingPayment();
        Assert.Equal(EscrowStatus.AwaitingPayment, s.Status);
        Assert.Equal(PendingEffectKinds(EffectKind.CreatePaymentIntent), s.Outbox.Select(e => e.Kind).ToArray());
        Assert.Equal(T0 + AnEscrow.Window, s.Deadline);
        Assert.Equal(T0 + AnEscrow.Window + AnEscrow.Grace, s.ReplyDeadline);
        Assert.Equal(T0 + AnEscrow.UnpaidExpiry, s.UnpaidExpiresAt);
        Assert.Equal(Money.Eur(11_25), s.Split.RecipientShare);
        Assert.Equal(Money.Eur(3_75), s.Split.PlatformFee);
        Assert.Equal(new[] { "created" }, s.Events());
        EscrowInvariants.Check(s);
    }

    [Fact]
    public void Happy_path_holds_replies_captures_transfers_and_releases_with_history_in_order()
    {
        var s = AnEscrow.AwaitingPayment();
        s = s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), "pi_1", "secret", "requires_capture", 15_00, "eur"), T0.AddMinutes(1));
        Assert.Equal(EscrowStatus.Held, s.Status);
        Assert.Equal("pi_1", s.PaymentIntentId);
        Assert.Equal(T0.AddMinutes(1), s.HeldAt);
        Assert.True(s.HasEmail(EmailKind.NewMessage));
        Assert.True(s.HasEmail(EmailKind.PaymentReceipt));
        Assert.False(s.Has(EffectKind.CreatePaymentIntent));

        s = s.Then(new AcceptReply(T0.AddHours(3), "email", "Here are the slides."), T0.AddHours(3));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.True(s.HasEmail(EmailKind.ReplyForwarded));
        Assert.Equal("Here are the slides.", s.Outbox.Single(e => e.Email == EmailKind.ReplyForwarded).Payload);

        s = s.Then(new Captured(s.EffectId(EffectKind.CapturePayment), "ch_1"), T0.AddHours(3).AddSeconds(5));
        Assert.Equal(EscrowStatus.Processing, s.Status);
        Assert.Equal("ch_1", s.ChargeId);
        Assert.False(s.Has(EffectKind.CapturePayment));
        Assert.True(s.Has(EffectKind.TransferShare));

        s = s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), "tr_1", "acct_1", Adopted: false), T0.AddHours(3).AddSeconds(10));
        Assert.Equal(EscrowStatus.Released, s.Status);
        Assert.Equal("tr_1", s.TransferId);
        Assert.Equal("acct_1", s.RecipientAccountId);
        Assert.True(s.HasEmail(EmailKind.PayoutSent));
        Assert.False(s.Has(EffectKind.TransferShare));
        Assert.Equal(new[] { "created", "payment_intent_created", "authorised", "reply_accepted", "captured", "transferred" }, s.Events());
        Assert.Equal(Enumerable.Range(1, 6), s.History.Select(h => h.Seq));
        Assert.Equal(s.Split.RecipientShare.Minor, s.History[^1].AmountMinor);
        Assert.True(s.History.Zip(s.History.Skip(1)).All(p => p.First.At <= p.Second.At));
    }

    [Fact]
    public void Reply_at_deadline_plus_grace_exactly_is_accepted_and_marks_the_grace_used()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.ReplyDeadline, "email"), s.ReplyDeadline);
        Assert.True(d.Accepted);
        Assert.Equal(EscrowStatus.Processing, d.State.Status);
        Assert.True(d.State.Reply!.GraceUsed);
        Assert.False(d.State.HasEmail(EmailKind.ReplyForwarded));
    }

    [Theory]
    [InlineData(1L)] // decided as it comes
    [InlineData(TimeSpan.TicksPerMinute)] // decided a minute later
    public void Reply_one_tick_after_deadline_plus_grace_is_rejected_as_too_late(long decidedTicksAfterReplyDeadline)
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.ReplyDeadline.AddTicks(1), "email"), s.ReplyDeadline.AddTicks(decidedTicksAfterReplyDeadline));
        d.AssertRefused("reply_too_late", unchanged: s);
    }

    [Fact]
    public void Reply_at_the_deadline_itself_does_not_use_the_grace()
    {
        var s = AnEscrow.Held();
        var d = s.Decide(new AcceptReply(s.Deadline, "email"), s.Deadline);
        Assert.False(d.State.Reply!.GraceUsed);
    }

    [Fact]
    public void Second_reply_is_rejected_and_captures_nothing_more()
    {
        var s = AnEscrow.Processing();
        var d = s.Decide(new AcceptReply(s.StatusChangedAt.AddMinutes(1), "email", "again"), s.StatusChangedAt.AddMinutes(1));
        Assert.Equal("already_replied", d.Rejection?.Code);
        Assert.Single(d.State.Outbox, e => e.Kind == EffectKind.CapturePayment);
    }

    [Fact]
    public void Effect_completed_removes_exactly_that_effect()
    {
        var s = AnEscrow.Held();
        var id = s.EmailEffectId(EmailKind.NewMessage);
        s = s.Then(new EffectCompleted(id), s.StatusChangedAt.AddSeconds(1));
        Assert.DoesNotContain(s.Outbox, e => e.Id == id);
        Assert.True(s.HasEmail(EmailKind.PaymentReceipt));
        Assert.Equal("unknown_effect", s.Decide(new EffectCompleted(id), s.StatusChangedAt.AddSeconds(2)).Rejection?.Code);
    }

    [Fact]
    public void Effect_ids_are_unique_and_increasing_across_a_whole_lifecycle()
    {
        var s = AnEscrow.Released();
        var ids = s.Outbox.Select(e => e.Id).ToArray();
        Assert.Equal(ids.Order(), ids);
        Assert.All(ids, id => Assert.True(id < s.NextEffectId));
    }

    [Fact]
    public void Invariants_detect_a_released_escrow_without_a_transfer()
    {
        var s = AnEscrow.Released() with { TransferId = null };
        var error = Assert.Throws<EscrowInvariantException>(() => EscrowInvariants.Check(s));
        Assert.Equal(s.Id, error.EscrowId);
        Assert.Contains("a released escrow has a transfer", error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> BrokenStates() => new()
    {
        { "split_does_not_add_up", "share + fee == amount" },
        { "transfer_without_charge", "a transfer needs a captured charge" },
        { "pending_setup_uncaptured", "pending_user_setup and transfer_failed escrows are captured" },
        { "refunded_with_transfer", "a refunded escrow has no transfer" },
        { "duplicate_effect_ids", "effect ids are unique" },
        { "two_transfers_pending", "at most one transfer is pending" },
        { "terminal_with_capture", "a terminal escrow moves no more money" },
        { "captured_and_cancelled", "a captured payment is never cancelled" },
        { "reply_deadline_before_deadline", "the reply deadline is not before the deadline" },
    };

    [Theory]
    [MemberData(nameof(BrokenStates))]
    public void Invariants_detect_a_broken_state(string broken, string what)
    {
        var transfer = new PendingEffect(90, EffectKind.TransferShare);
        var s = broken switch
        {
            "split_does_not_add_up" => AnEscrow.Held() with { Split = new Split(Money.Eur(11_25), Money.Eur(3_74)) },
            "transfer_without_charge" => AnEscrow.Processing() with { TransferId = "tr_x" },
            "pending_setup_uncaptured" => AnEscrow.PendingUserSetup() with { ChargeId = null },
            "refunded_with_transfer" => AnEscrow.Refunded() with { TransferId = "tr_x", ChargeId = "ch_x" },
            "duplicate_effect_ids" => AnEscrow.Held() with { Outbox = [new PendingEffect(1, EffectKind.SendEmail), new PendingEffect(1, EffectKind.RaiseAlert)] },
            "two_transfers_pending" => AnEscrow.Captured() with { Outbox = [transfer, transfer with { Id = 91 }] },
            "terminal_with_capture" => AnEscrow.Refunded() with { Outbox = [new PendingEffect(90, EffectKind.CapturePayment)] },
            "captured_and_cancelled" => AnEscrow.Captured() with { Outbox = [new PendingEffect(90, EffectKind.CancelPaymentIntent)] },
            "reply_deadline_before_deadline" => AnEscrow.Held() with { ReplyDeadline = AnEscrow.Held().Deadline.AddTicks(-1) },
            _ => throw new ArgumentOutOfRangeException(nameof(broken), broken, null),
        };
        var error = Assert.Throws<EscrowInvariantException>(() => EscrowInvariants.Check(s));
        Assert.Contains(what, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invariants_hold_for_every_built_state()
    {
        foreach (var status in Enum.GetValues<EscrowStatus>())
        {
            var error = Record.Exception(() => EscrowInvariants.Check(AnEscrow.In(status)));
            Assert.Null(error);
        }
    }

    [Fact]
    public void History_records_the_status_after_each_transition_with_consecutive_sequence_numbers()
    {
        var s = AnEscrow.Refunded();
        Assert.Equal(Enumerable.Range(1, s.History.Length), s.History.Select(h => h.Seq));
        Assert.Equal(EscrowStatus.AwaitingPayment, s.History[0].Status);
        Assert.Equal(EscrowStatus.Held, s.History.Single(h => h.Event == "authorised").Status);
        Assert.Equal(EscrowStatus.RefundPending, s.History.Single(h => h.Event == "deadline_passed").Status);
        var last = s.History[^1];
        Assert.Equal(EscrowStatus.Refunded, last.Status);
        Assert.Equal(s.Amount.Minor, last.AmountMinor);
    }

    [Fact]
    public void An_escrow_with_no_revenue_share_keeps_it_all_as_the_fee_and_stays_valid()
    {
        var s = EscrowMachine.Create(AnEscrow.New(bps: 0), T0);
        Assert.Equal(Money.Eur(0), s.Split.RecipientShare);
        Assert.Equal(s.Amount, s.Split.PlatformFee);
        EscrowInvariants.Check(s);
    }

    private static EffectKind[] PendingEffectKinds(params EffectKind[] kinds) => kinds;
}
