namespace Escrow.Grains.Email;

public sealed record EmailMessage(
    string To,
    string Subject,
    string TextBody,
    string HtmlBody,
    string Tag,
    string? ReplyTo = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

public interface IEmailSender
{
    /// <summary>Sends one email and returns the provider's message id. Throws <see cref="EmailSendException"/>.</summary>
    Task<string> SendAsync(EmailMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// The provider's id of a message sent earlier with this metadata value (Postmark's outbound message search), or
    /// null when none was. Throws <see cref="EmailSendException"/> when the provider cannot say.
    /// </summary>
    Task<string?> FindSentAsync(string metadataKey, string metadataValue, CancellationToken cancellationToken = default);
}

public sealed class EmailSendException(bool transient, string message, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;

    /// <summary>Postmark's ErrorCode, when it answered one.</summary>
    public int? ErrorCode { get; init; }

    /// <summary>
    /// Postmark refused this address for good: 300 (invalid e-mail request, such as a malformed address) or 406 (the
    /// recipient is inactive: bounced, or marked it as spam). Sending again cannot succeed.
    /// </summary>
    public bool Rejected => ErrorCode is 300 or 406;
}
