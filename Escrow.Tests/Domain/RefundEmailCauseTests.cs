using Escrow.Grains.Email;

namespace Escrow.Tests.Domain;

/// <summary>The refund and missed-opportunity e-mails say what happened, for each cause the machine decides.</summary>
public sealed class RefundEmailCauseTests
{
    private static readonly RecipientContact Recipient = new("alice@recipient.test", "Alice");
    private static readonly EmailComposer Composer = new(new PostmarkOptions { InboundDomain = "reply.escrow.test" });

    private static (EmailMessage Sender, EmailMessage Recipient, RefundCause Cause) Mails(EscrowState s)
    {
        var refund = s.Outbox.Single(e => e.Email == EmailKind.RefundIssued);
        var missed = s.Outbox.Single(e => e.Email == EmailKind.MissedOpportunity);
        var cause = Enum.Parse<RefundCause>(refund.Detail!);
        Assert.Equal(refund.Detail, missed.Detail);
        return (Composer.Compose(s, EmailKind.RefundIssued, Recipient, null, cause: cause), Composer.Compose(s, EmailKind.MissedOpportunity, Recipient, null, cause: cause), cause);
    }

    [Fact]
    public void No_reply_in_time()
    {
        var (sender, recipient, cause) = Mails(AnEscrow.Refunded());
        Assert.Equal(RefundCause.NoReply, cause);
        Assert.Equal("No reply in time: your payment of 15.00 EUR is given back", sender.Subject);
        Assert.Contains("Alice did not reply to", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("you are not charged", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("passed without a reply, so the sender gets the payment back", recipient.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Refunded_by_the_platform_before_a_reply()
    {
        var s = AnEscrow.Held();
        s = s.Then(new OperatorRefund("asked"), s.StatusChangedAt.AddHours(1));
        s = s.Then(new PaymentIntentCancelled(s.EffectId(EffectKind.CancelPaymentIntent)), s.StatusChangedAt.AddMinutes(1));
        var (sender, recipient, cause) = Mails(s);
        Assert.Equal(RefundCause.PlatformBeforeReply, cause);
        Assert.Contains("The platform closed your message", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("before a reply came", sender.TextBody, StringComparison.Ordinal);
        Assert.Equal("Message withdrawn by the platform: " + s.Subject, recipient.Subject);
        Assert.Contains("a reply would no longer earn 11.25 EUR", recipient.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Refunded_by_the_platform_after_a_reply_before_the_payout()
    {
        var s = AnEscrow.PendingUserSetup();
        s = s.Then(new OperatorRefund("never set up payouts"), s.StatusChangedAt.AddDays(1));
        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), s.StatusChangedAt.AddMinutes(1));
        var (sender, recipient, cause) = Mails(s);
        Assert.Equal(RefundCause.PlatformAfterReply, cause);
        Assert.Contains("Alice replied to", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("refunded your payment before it was paid out", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("refunded to your card", sender.TextBody, StringComparison.Ordinal);
        Assert.Equal("Your reply will not be paid: " + s.Subject, recipient.Subject);
    }

    [Fact]
    public void Refunded_by_the_platform_after_the_payout()
    {
        var s = AnEscrow.Released();
        s = s.Then(new OperatorRefund("complaint"), s.StatusChangedAt.AddDays(1));
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        s = s.Then(new PaymentRefunded(s.EffectId(EffectKind.RefundPayment), "re_1"), s.StatusChangedAt.AddMinutes(1));
        var (sender, recipient, cause) = Mails(s);
        Assert.Equal(RefundCause.PlatformAfterRelease, cause);
        Assert.Contains("was paid; the platform has since refunded your payment in full", sender.TextBody, StringComparison.Ordinal);
        Assert.Equal("Payout taken back: " + s.Subject, recipient.Subject);
        Assert.Contains("took back the 11.25 EUR transferred to your connected account", recipient.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Authorisation_expired_while_the_refund_waited()
    {
        var s = AnEscrow.RefundPending();
        s = s.Then(new AuthorisationVoided("expired", s.PaymentIntentId), s.StatusChangedAt.AddDays(6));
        var (sender, recipient, cause) = Mails(s);
        Assert.Equal(RefundCause.AuthorisationExpired, cause);
        Assert.Equal("No reply in time: the hold on your payment of 15.00 EUR has ended", sender.Subject);
        Assert.Contains("expired before it was cancelled", sender.TextBody, StringComparison.Ordinal);
        Assert.Contains("card authorisation has since expired", recipient.TextBody, StringComparison.Ordinal);
    }

    [Fact]
    public void Dispute_lost()
    {
        var s = AnEscrow.Released();
        s = s.Then(new DisputeOpened("dp_1"), s.StatusChangedAt.AddDays(1));
        s = s.Then(new TransferReversalMade(s.EffectId(EffectKind.ReverseTransfer), "trr_1"), s.StatusChangedAt.AddMinutes(1));
        s = s.Then(new DisputeClosed("dp_1", Won: false), s.StatusChangedAt.AddDays(20));
        var (sender, recipient, cause) = Mails(s);
        Assert.Equal(RefundCause.Dispute, cause);
        Assert.Contains("Your bank decided your dispute", sender.TextBody, StringComparison.Ordinal);
        Assert.Equal("Dispute lost: " + s.Subject, recipient.Subject);
        Assert.Contains("has been taken back from your connected account", recipient.TextBody, StringComparison.Ordinal);
    }
}
