using Escrow.Grains.Email;

namespace Escrow.Tests.Domain;

/// <summary>The refund and missed-opportunity e-mails say what happened, for each cause the machine decides.</summary>
public sealed class RefundEmailCauseTests
{
    private static readonly RecipientContact Recipient = new("alice@recipient.test", "Alice");
    private static readonly EmailComposer Composer = new(new PostmarkOptions { InboundDomain = "reply.escrow.test" });

    /// <summary>What one cause's two e-mails must say. A subject of null is not checked; "{subject}" stands for the escrow's subject.</summary>
    private sealed record Expected(
        Func<EscrowState> Start,
        Step[] Steps,
        RefundCause Cause,
        string? SenderSubject,
        string[] SenderBody,
        string? RecipientSubject,
        string[] RecipientBody);

    /// <summary>A command given <paramref name="After"/> the last status change.</summary>
    private sealed record Step(TimeSpan After, Func<EscrowState, EscrowCommand> Command);

    private static Step After(TimeSpan after, Func<EscrowState, EscrowCommand> command) => new(after, command);

    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private static readonly Dictionary<string, Expected> Cases = new()
    {
        ["No reply in time"] = new(
            AnEscrow.Refunded,
            [],
            RefundCause.NoReply,
            "No reply in time: your payment of 15.00 EUR is given back",
            ["Alice did not reply to", "you are not charged"],
            null,
            ["passed without a reply, so the sender gets the payment back"]),
        ["Refunded by the platform before a reply"] = new(
            () => AnEscrow.Held(),
            [
                After(TimeSpan.FromHours(1), _ => new OperatorRefund("asked")),
                After(Minute, s => new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent))),
            ],
            RefundCause.PlatformBeforeReply,
            null,
            ["The platform closed your message", "before a reply came"],
            "Message withdrawn by the platform: {subject}",
            ["a reply would no longer earn 11.25 EUR"]),
        ["Refunded by the platform after a reply before the payout"] = new(
            AnEscrow.PendingUserSetup,
            [
                After(TimeSpan.FromDays(1), _ => new OperatorRefund("never set up payouts")),
                After(Minute, s => new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1")),
            ],
            RefundCause.PlatformAfterReply,
            null,
            ["Alice replied to", "refunded your payment before it was paid out", "refunded to your card"],
            "Your reply will not be paid: {subject}",
            []),
        ["Refunded by the platform after the payout"] = new(
            AnEscrow.Released,
            [
                After(TimeSpan.FromDays(1), _ => new OperatorRefund("complaint")),
                After(Minute, s => new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1")),
                After(Minute, s => new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1")),
            ],
            RefundCause.PlatformAfterRelease,
            null,
            ["was paid; the platform has since refunded your payment in full"],
            "Payout taken back: {subject}",
            ["took back the 11.25 EUR transferred to your connected account"]),
        ["Authorisation expired while the refund waited"] = new(
            AnEscrow.RefundPending,
            [After(TimeSpan.FromDays(6), s => new AuthorisationVoided("expired", s.PaymentIntentId))],
            RefundCause.AuthorisationExpired,
            "No reply in time: the hold on your payment of 15.00 EUR has ended",
            ["expired before it was cancelled"],
            null,
            ["card authorisation has since expired"]),
        ["Dispute lost"] = new(
            AnEscrow.Released,
            [
                After(TimeSpan.FromDays(1), _ => new DisputeOpened("dp_1")),
                After(Minute, s => new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1")),
                After(TimeSpan.FromDays(20), _ => new DisputeClosed("dp_1", Won: false)),
            ],
            RefundCause.Dispute,
            null,
            ["Your bank decided your dispute"],
            "Dispute lost: {subject}",
            ["has been taken back from your connected account"]),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void The_emails_say_what_happened(string name)
    {
        var expected = Cases[name];
        var s = expected.Start();
        foreach (var step in expected.Steps)
            s = s.Then(step.Command(s), s.StatusChangedAt + step.After);
        var refund = s.Outbox.Single(e => e.Email == EmailKind.RefundIssued);
        var missed = s.Outbox.Single(e => e.Email == EmailKind.MissedOpportunity);
        var cause = Enum.Parse<RefundCause>(refund.Detail!);
        Assert.Equal(refund.Detail, missed.Detail);
        Assert.Equal(expected.Cause, cause);

        var sender = Composer.Compose(s, EmailKind.RefundIssued, Recipient, null, cause: cause);
        var recipient = Composer.Compose(s, EmailKind.MissedOpportunity, Recipient, null, cause: cause);
        if (expected.SenderSubject is { } senderSubject)
            Assert.Equal(senderSubject.Replace("{subject}", s.Subject, StringComparison.Ordinal), sender.Subject);
        if (expected.RecipientSubject is { } recipientSubject)
            Assert.Equal(recipientSubject.Replace("{subject}", s.Subject, StringComparison.Ordinal), recipient.Subject);
        foreach (var text in expected.SenderBody)
            Assert.Contains(text, sender.TextBody, StringComparison.Ordinal);
        foreach (var text in expected.RecipientBody)
            Assert.Contains(text, recipient.TextBody, StringComparison.Ordinal);
    }
}
