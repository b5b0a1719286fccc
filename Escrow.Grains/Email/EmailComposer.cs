using System.Globalization;
using System.Net;
using Escrow.Grains.Domain;

namespace Escrow.Grains.Email;

public sealed record RecipientContact(string Email, string DisplayName);

/// <summary>
/// Builds every email the parties receive. The sender never sees the recipient's address, and the recipient's
/// mails carry the escrow's reply address, so a reply from a mail client reaches the inbound webhook.
/// </summary>
public sealed class EmailComposer(PostmarkOptions options)
{
    public string ReplyAddress(string replyToken) => $"reply+{replyToken}@{options.InboundDomain}";

    public EmailMessage Compose(EscrowState s, EmailKind kind, RecipientContact recipient, string? payload, string? onboardingUrl = null, string? statusPageUrl = null)
    {
        var amount = Format(s.Amount);
        var share = Format(s.Split.RecipientShare);
        var deadline = s.Deadline.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string> { ["escrow_id"] = s.Id.ToString("D"), ["kind"] = Tag(kind) };
        var (to, replyTo, subject, text) = kind switch
        {
            EmailKind.NewMessage => (recipient.Email, ReplyAddress(s.ReplyToken),
                $"New paid message: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\n{s.SenderEmail} paid {amount} to reach you. Reply to this email before {deadline} and {share} is yours.\n\nSubject: {s.Subject}\n\n{s.Message}\n"),
            EmailKind.DeadlineReminder50 => (recipient.Email, ReplyAddress(s.ReplyToken),
                $"Half of your time is left to reply: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nA paid message of {amount} is waiting for your reply. Reply to this email before {deadline} to receive {share}.\n\nSubject: {s.Subject}\n"),
            EmailKind.DeadlineReminder75 => (recipient.Email, ReplyAddress(s.ReplyToken),
                $"A quarter of your time is left to reply: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nThe deadline of a paid message of {amount} is {deadline}. Reply to this email to receive {share}; after the deadline the sender gets the payment back.\n\nSubject: {s.Subject}\n"),
            EmailKind.ReplyForwarded => (s.SenderEmail, null,
                $"Re: {s.Subject}",
                $"{recipient.DisplayName} replied to your message:\n\n{payload}\n"),
            EmailKind.PaymentReceipt => (s.SenderEmail, null,
                $"Payment held: {amount} for your message \"{s.Subject}\"",
                $"Your payment of {amount} is held, not charged. {recipient.DisplayName} has until {deadline} to reply; if there is no reply, the hold is cancelled and you pay nothing.\n"
                + (statusPageUrl is null ? "" : $"\nFollow your message here (the link is yours alone: do not share it): {statusPageUrl}\n")),
            EmailKind.RefundIssued => (s.SenderEmail, null,
                $"No reply in time: your payment of {amount} is given back",
                $"{recipient.DisplayName} did not reply to \"{s.Subject}\" before the deadline. The hold on your payment of {amount} is cancelled; you are not charged.\n"),
            EmailKind.MissedOpportunity => (recipient.Email, null,
                $"Deadline passed: {s.Subject}",
                $"Hello {recipient.DisplayName},\n\nThe deadline for a paid message of {amount} passed without a reply, so the sender gets the payment back.\n"),
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
