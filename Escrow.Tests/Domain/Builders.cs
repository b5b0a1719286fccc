namespace Escrow.Tests.Domain;

/// <summary>
/// Escrows in every status, produced by driving the machine itself from <see cref="EscrowMachine.Create"/> with
/// realistic commands, so a builder can never produce a state the machine would not.
/// </summary>
internal static class AnEscrow
{
    public static readonly DateTimeOffset T0 = new(2030, 3, 1, 12, 0, 0, TimeSpan.Zero);
    public static readonly TimeSpan Window = TimeSpan.FromHours(24);
    public static readonly TimeSpan Grace = TimeSpan.FromMinutes(15);
    public static readonly TimeSpan UnpaidExpiry = TimeSpan.FromHours(1);
    public const string SenderEmail = "sender@example.test";
    public const string PaymentIntentId = "pi_test_1";
    public const string ChargeId = "ch_test_1";
    public const string TransferId = "tr_test_1";
    public const string AccountId = "acct_test_1";

    public static EscrowMachine Machine { get; } = new(EscrowPolicy.Default);

    public static Money DefaultAmount => Money.Eur(15_00);

    public static NewEscrow New(Money? amount = null, TimeSpan? window = null, int bps = 7_500) => new(
        Id: Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
        RecipientId: "alice",
        SenderEmail: SenderEmail,
        Subject: "A question about your talk",
        Message: "Could you share the slides?",
        Amount: amount ?? DefaultAmount,
        RevenueShareBps: bps,
        ResponseWindow: window ?? Window,
        ReplyGrace: Grace,
        UnpaidExpiry: UnpaidExpiry,
        RequestHash: "hash",
        ReplyTokenHash: Issued.ReplyTokenHash,
        AccessTokenHash: Issued.AccessTokenHash,
        TokenKeyId: Issued.KeyId,
        PaymentMethodId: "pm_card_visa");

    /// <summary>Derives the builders' tokens again (they are made for the escrow created at <see cref="T0"/>).</summary>
    public static readonly EscrowTokens Tokens = new(["token-secret-for-tests-000001"]);

    private static IssuedTokens Issued => Tokens.Issue(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), T0);

    public static string ReplyToken => Issued.ReplyToken;

    public static EscrowState AwaitingPayment(Money? amount = null, TimeSpan? window = null) =>
        EscrowMachine.Create(New(amount, window), T0);

    /// <summary>Authorised one minute after creation.</summary>
    public static EscrowState Held(Money? amount = null, TimeSpan? window = null)
    {
        var s = AwaitingPayment(amount, window);
        return s.Then(new PaymentIntentCreated(s.EffectId(EffectKind.CreatePaymentIntent), PaymentIntentId, "secret_1", "requires_capture", s.Amount.Minor, s.Amount.Currency.Code), T0.AddMinutes(1));
    }

    /// <summary>Replied two hours after creation: a CapturePayment effect is pending.</summary>
    public static EscrowState Processing() => Held().Then(new AcceptReply(T0.AddHours(2), "email", "Here are the slides."), T0.AddHours(2));

    public static EscrowState Captured()
    {
        var s = Processing();
        return s.Then(new Captured(s.EffectId(EffectKind.CapturePayment), ChargeId), s.StatusChangedAt.AddMinutes(1));
    }

    public static EscrowState PendingUserSetup()
    {
        var s = Captured();
        return s.Then(new RecipientNotReady(s.EffectId(EffectKind.TransferShare)), s.StatusChangedAt.AddMinutes(2));
    }

    public static EscrowState TransferFailed()
    {
        var s = Captured();
        return s.Then(new TransferRejected(s.EffectId(EffectKind.TransferShare), "balance_insufficient", Permanent: false), s.StatusChangedAt.AddMinutes(2));
    }

    public static EscrowState Released()
    {
        var s = Captured();
        return s.Then(new Transferred(s.EffectId(EffectKind.TransferShare), TransferId, AccountId, Adopted: false), s.StatusChangedAt.AddMinutes(2));
    }

    /// <summary>Released, then the sender's bank opened a dispute: the share's reversal is pending.</summary>
    public static EscrowState Disputed()
    {
        var s = Released();
        return s.Then(new DisputeOpened("dp_1"), s.StatusChangedAt.AddDays(2));
    }

    /// <summary>Disputed, and the share taken back from the recipient's account.</summary>
    public static EscrowState DisputedAndReversed()
    {
        var s = Disputed();
        return s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
    }

    /// <summary>The deadline and grace passed with no reply: a RequestRefundPermit effect is pending.</summary>
    public static EscrowState RefundPending()
    {
        var s = Held();
        return s.Then(new DeadlinePassed(), s.ReplyDeadline);
    }

    public static EscrowState Refunded()
    {
        var s = RefundPending();
        s = s.Then(new RefundPermitAnswered(s.EffectId(EffectKind.RequestRefundPermit), RefundPermit.Granted), s.ReplyDeadline.AddSeconds(1));
        return s.Then(new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent)), s.ReplyDeadline.AddSeconds(2));
    }

    /// <summary>Awaiting payment after the create's confirm was declined: the PaymentIntent waits for another card.</summary>
    public static EscrowState Declined()
    {
        var s = AwaitingPayment();
        return s.Then(new PaymentFailed("card_declined", s.EffectId(EffectKind.CreatePaymentIntent), PaymentIntentId, "pi_test_secret"), T0.AddMinutes(1));
    }

    /// <summary>Declined, and the unpaid expiry passed with no other card authorised.</summary>
    public static EscrowState PaymentFailed()
    {
        var s = Declined();
        return s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
    }

    public static EscrowState Cancelled()
    {
        var s = AwaitingPayment();
        return s.Then(new UnpaidExpired(), s.UnpaidExpiresAt);
    }

    public static EscrowState In(EscrowStatus status) => status switch
    {
        EscrowStatus.AwaitingPayment => AwaitingPayment(),
        EscrowStatus.Held => Held(),
        EscrowStatus.Processing => Processing(),
        EscrowStatus.PendingUserSetup => PendingUserSetup(),
        EscrowStatus.TransferFailed => TransferFailed(),
        EscrowStatus.RefundPending => RefundPending(),
        EscrowStatus.Released => Released(),
        EscrowStatus.Refunded => Refunded(),
        EscrowStatus.PaymentFailed => PaymentFailed(),
        EscrowStatus.Cancelled => Cancelled(),
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };
}

internal static class EscrowStateExtensions
{
    /// <summary>Decides a command that the scenario needs accepted, and checks the invariants of the result.</summary>
    public static EscrowState Then(this EscrowState s, EscrowCommand command, DateTimeOffset now)
    {
        var decision = AnEscrow.Machine.Decide(s, command, now);
        if (!decision.Accepted)
        {
            throw new InvalidOperationException($"Builder step '{command.Name}' in {s.Status.ToWire()} was rejected: {decision.Rejection!.Code}.");
        }
        EscrowInvariants.Check(decision.State);
        return decision.State;
    }

    public static Decision Decide(this EscrowState s, EscrowCommand command, DateTimeOffset now) =>
        AnEscrow.Machine.Decide(s, command, now);

    /// <summary>The command was refused by <paramref name="code"/>, and the state is the very one it was given.</summary>
    public static void AssertRefused(this Decision d, string code, EscrowState unchanged)
    {
        Assert.Equal(code, d.Rejection?.Code);
        Assert.Same(unchanged, d.State);
    }

    public static int EffectId(this EscrowState s, EffectKind kind) => s.Outbox.Single(e => e.Kind == kind).Id;

    public static int EmailEffectId(this EscrowState s, EmailKind kind) => s.Outbox.Single(e => e.Kind == EffectKind.SendEmail && e.Email == kind).Id;

    public static bool Has(this EscrowState s, EffectKind kind) => s.Outbox.Any(e => e.Kind == kind);

    public static bool HasEmail(this EscrowState s, EmailKind kind) => s.Outbox.Any(e => e.Kind == EffectKind.SendEmail && e.Email == kind);

    public static string[] Events(this EscrowState s) => s.History.Select(h => h.Event).ToArray();
}
