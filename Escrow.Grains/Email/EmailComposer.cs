using System.Net;

namespace Escrow.Grains.Email;

public sealed record RecipientContact(string Email, string DisplayName);

/// <summary>
/// Builds every email the parties receive. The sender never sees the recipient's address, and the recipient's
/// mails carry the escrow's reply address, so a reply from a mail client reaches the inbound webhook.
/// </summary>
public sealed class EmailComposer(PostmarkOptions options)
{
    public string ReplyAddress(string replyToken) => $"reply+{replyToken}@{options.InboundDomain}";

    /// <summary>The e-mails the recipient can answer: they carry the escrow's reply address.</summary>
    public static bool CarriesReplyAddress(EmailKind kind) => kind is EmailKind.NewMessage or EmailKind.DeadlineReminder50 or EmailKind.DeadlineReminder75;

    /// <param name="cause">For the refund and missed-opportunity e-mails: why the sender got their money back (the effect's detail).</param>
    /// <param name="replyToken">For the e-mails that carry the reply address: the escrow's reply token (it keeps only its hash).</param>
    public EmailMessage Compose(EscrowState s, EmailKind kind, RecipientContact recipient, string? payload, string? onboardingUrl = null, string? statusPageUrl = null,
        RefundCause cause = RefundCause.NoReply, string? replyToken = null)
    {
        if (CarriesReplyAddress(kind) && string.IsNullOrEmpty(replyToken))
        {
            throw new ArgumentException($"The {kind} e-mail carries the reply address: its reply token is needed.", nameof(replyToken));
        }
        var amount = Format(s.Amount);
        var share = Format(s.Split.RecipientShare);
        var deadline = s.Deadline.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string> { ["escrow_id"] = s.Id.ToString("D"), ["kind"] = Tag(kind) };
        var (to, replyTo, subject, text) = kind switch
        {
            EmailKind.NewMessage => (recipient.Email, ReplyAddress(replyToken!),
                $"New paid message: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\n{s.SenderEmail} paid {amount} to reach you. Reply to this email before {deadline} and {share} is yours.\n\nSubject: {s.Subject}\n\n{s.Message}\n"),
            EmailKind.DeadlineReminder50 => (recipient.Email, ReplyAddress(replyToken!),
                $"Half of your time is left to reply: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nA paid message of {amount} is waiting for your reply. Reply to this email before {deadline} to receive {share}.\n\nSubject: {s.Subject}\n"),
            EmailKind.DeadlineReminder75 => (recipient.Email, ReplyAddress(replyToken!),
                $"A quarter of your time is left to reply: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nThe deadline of a paid message of {amount} is {deadline}. Reply to this email to receive {share}; after the deadline the sender gets the payment back.\n\nSubject: {s.Subject}\n"),
            EmailKind.ReplyForwarded => (s.SenderEmail, null,
                $"Re: {s.Subject}",
                $"{recipient.DisplayName} replied to your message:\n\n{payload}\n"),
            EmailKind.PaymentReceipt => (s.SenderEmail, null,
                $"Payment held: {amount} for your message \"{s.Subject}\"",
                $"Your payment of {amount} is held, not charged. {recipient.DisplayName} has until {deadline} to reply; if there is no reply, the hold is cancelled and you pay nothing.\n"
                + (statusPageUrl is null ? "" : $"\nFollow your message here (the link is yours alone: do not share it): {statusPageUrl}\n")),
            EmailKind.RefundIssued => (s.SenderEmail, null, RefundSubject(s, cause, amount), RefundText(s, cause, recipient.DisplayName, amount)),
            EmailKind.MissedOpportunity => (recipient.Email, null, MissedSubject(s, cause), MissedText(s, cause, recipient.DisplayName, amount, share)),
            EmailKind.PayoutSent => (recipient.Email, null,
                $"Payout sent: {share}",
                $"Hello {recipient.DisplayName},\n\nThank you for replying to \"{s.Subject}\". {share} is on its way to your connected account.\n"),
            EmailKind.PendingPayoutSetup => (recipient.Email, null,
                $"Set up payouts to receive {share}",
                $"Hello {recipient.DisplayName},\n\nYou replied to \"{s.Subject}\" and earned {share}. Finish your payout setup to receive it{(onboardingUrl is null ? "." : ": " + onboardingUrl)}\n"),
            EmailKind.PaymentVoided when s.Reply is null => (s.SenderEmail, null,
                $"Your message was withdrawn: \"{s.Subject}\"",
                $"The hold on your payment of {amount} was cancelled by your card issuer or the payment provider before {recipient.DisplayName} replied. You are not charged, and the message is closed: a reply will not reach you. To reach {recipient.DisplayName}, send it again.\n"),
            EmailKind.PaymentVoided => (s.SenderEmail, null,
                $"Your payment of {amount} was not taken: \"{s.Subject}\"",
                $"The hold on your payment of {amount} was cancelled by your card issuer or the payment provider before it could be taken. You are not charged.\n"),
            EmailKind.PaymentWithdrawn when s.Reply is null => (recipient.Email, null,
                $"Message withdrawn: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nThe sender's payment for \"{s.Subject}\" was cancelled by their card issuer or the payment provider, so the message is withdrawn: a reply would no longer earn {share}. There is nothing to do.\n"),
            EmailKind.PaymentWithdrawn => (recipient.Email, null,
                $"Payment cancelled: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nThank you for replying to \"{s.Subject}\". The sender's payment was cancelled by their card issuer or the payment provider before it could be taken, so {share} could not be paid. Our team has been told and will contact you.\n"),
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
        };
        var html = "<html><body>" + string.Join("", text.Split("\n\n").Select(p => $"<p>{WebUtility.HtmlEncode(p).Replace("\n", "<br>", StringComparison.Ordinal)}</p>")) + "</body></html>";
        return new EmailMessage(to, subject, text, html, Tag(kind), replyTo, metadata);
    }

    private static string RefundSubject(EscrowState s, RefundCause cause, string amount) => cause switch
    {
        RefundCause.PlatformBeforeReply => $"Your payment of {amount} is given back: \"{s.Subject}\"",
        RefundCause.PlatformAfterReply or RefundCause.PlatformAfterRelease => $"Your payment of {amount} is refunded: \"{s.Subject}\"",
        RefundCause.AuthorisationExpired => $"No reply in time: the hold on your payment of {amount} has ended",
        RefundCause.Dispute => $"Your dispute was decided in your favour: \"{s.Subject}\"",
        _ => $"No reply in time: your payment of {amount} is given back",
    };

    private static string RefundText(EscrowState s, RefundCause cause, string name, string amount)
    {
        // A captured payment comes back as a refund, which the card shows days later; a hold simply ends.
        var money = s.ChargeId is null
            ? $"The hold on your payment of {amount} is cancelled; you are not charged."
            : $"Your payment of {amount} is refunded to your card; it can take 5 to 10 days to appear.";
        return cause switch
        {
            RefundCause.PlatformBeforeReply =>
                $"The platform closed your message \"{s.Subject}\" to {name} before a reply came, and gave your payment back. {money}\n",
            RefundCause.PlatformAfterReply =>
                $"{name} replied to \"{s.Subject}\", but the platform refunded your payment before it was paid out. {money}\n",
            RefundCause.PlatformAfterRelease =>
                $"{name} replied to \"{s.Subject}\" and was paid; the platform has since refunded your payment in full. {money}\n",
            RefundCause.AuthorisationExpired =>
                $"{name} did not reply to \"{s.Subject}\" before the deadline, and the hold on your payment of {amount} expired before it was cancelled (a card authorisation lasts about 7 days). You are not charged.\n",
            RefundCause.Dispute =>
                $"Your bank decided your dispute of the payment of {amount} for \"{s.Subject}\" in your favour: the money comes back to you through your bank, not from us.\n",
            _ => $"{name} did not reply to \"{s.Subject}\" before the deadline. {money}\n",
        };
    }

    private static string MissedSubject(EscrowState s, RefundCause cause) => cause switch
    {
        RefundCause.PlatformBeforeReply => $"Message withdrawn by the platform: {s.Subject}",
        RefundCause.PlatformAfterReply => $"Your reply will not be paid: {s.Subject}",
        RefundCause.PlatformAfterRelease => $"Payout taken back: {s.Subject}",
        RefundCause.Dispute => $"Dispute lost: {s.Subject}",
        _ => $"Deadline passed: {s.Subject}",
    };

    private static string MissedText(EscrowState s, RefundCause cause, string name, string amount, string share) => cause switch
    {
        RefundCause.PlatformBeforeReply =>
            $"Hello {name},\n\nThe platform withdrew the paid message \"{s.Subject}\" ({amount}) before you replied and gave the sender their payment back. There is nothing to do: a reply would no longer earn {share}.\n",
        RefundCause.PlatformAfterReply =>
            $"Hello {name},\n\nThank you for replying to \"{s.Subject}\". The platform refunded the sender before {share} was paid to you, so this reply is not paid. Our team can tell you why.\n",
        RefundCause.PlatformAfterRelease =>
            $"Hello {name},\n\nThe platform refunded the sender of \"{s.Subject}\" after you were paid, and took back the {share} transferred to your connected account (a transfer reversal). Our team can tell you why.\n",
        RefundCause.AuthorisationExpired =>
            $"Hello {name},\n\nThe deadline for a paid message of {amount} passed without a reply, and the sender's card authorisation has since expired: the sender is not charged.\n",
        RefundCause.Dispute when s.ShareReversed =>
            $"Hello {name},\n\nThe sender's bank decided their dispute (chargeback) of the payment for \"{s.Subject}\" in the sender's favour, so the {share} you were paid has been taken back from your connected account.\n",
        RefundCause.Dispute =>
            $"Hello {name},\n\nThe sender's bank decided their dispute (chargeback) of the payment for \"{s.Subject}\" in the sender's favour. The platform carries the loss: you keep the {share} you were paid.\n",
        _ => $"Hello {name},\n\nThe deadline for a paid message of {amount} passed without a reply, so the sender gets the payment back.\n",
    };

    public static string Tag(EmailKind kind) => kind switch
    {
        EmailKind.NewMessage => "new-message",
        EmailKind.DeadlineReminder50 => "deadline-reminder-50",
        EmailKind.DeadlineReminder75 => "deadline-reminder-75",
        EmailKind.ReplyForwarded => "reply-forwarded",
        EmailKind.PaymentReceipt => "payment-receipt",
        EmailKind.RefundIssued => "refund",
        EmailKind.MissedOpportunity => "missed-opportunity",
        EmailKind.PayoutSent => "payout-sent",
        EmailKind.PendingPayoutSetup => "pending-payout-setup",
        EmailKind.PaymentVoided => "payment-voided",
        EmailKind.PaymentWithdrawn => "payment-withdrawn",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The e-mail a tag names (<see cref="Tag"/>), or null for a tag this service does not send.</summary>
    public static EmailKind? KindOf(string tag) =>
        Enum.GetValues<EmailKind>().Where(k => Tag(k) == tag).Select(k => (EmailKind?)k).FirstOrDefault();

    /// <summary>Minor units shown in the currency's own decimals (0 for JPY-like currencies, 3 for KWD-like ones, 2 otherwise).</summary>
    public static string Format(Money money)
    {
        var digits = ZeroDecimal.Contains(money.Currency.Code) ? 0 : ThreeDecimal.Contains(money.Currency.Code) ? 3 : 2;
        var scale = digits switch { 0 => 1, 3 => 1000, _ => 100 };
        var sign = money.Minor < 0 ? "-" : "";
        var whole = Math.DivRem(Math.Abs(money.Minor), scale, out var fraction);
        var fractionText = fraction.ToString(new string('0', Math.Max(digits, 1)), CultureInfo.InvariantCulture);
        return digits == 0
            ? $"{sign}{whole.ToString(CultureInfo.InvariantCulture)} {money.Currency.Code}"
            : $"{sign}{whole.ToString(CultureInfo.InvariantCulture)}.{fractionText} {money.Currency.Code}";
    }

    private static readonly HashSet<string> ThreeDecimal = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

    private static readonly HashSet<string> ZeroDecimal = ["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"];
}
