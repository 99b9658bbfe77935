// The words a policy gives the classifier: what a bucket's keywords, examples and structural
// signals are. The policy (policy/types.ts) builds its buckets on these; the classifier needs
// nothing else from it.

/** classifier.scope: which messages are scored. */
export type ClassifierScope = 'last_user' | 'user' | 'all';

export type TermSpec = string | { term: string; weight?: number };

/** Signals read from the request alone (request-facts.ts). */
export type FactSignal =
  | 'tools'
  | 'code_block'
  | 'inline_code'
  | 'json_schema'
  | 'question'
  /** tool_choice names one function (or is "required"): structured output, not an agent. */
  | 'forced_tool'
  /** The last message is a tool result. */
  | 'tool_result'
  /** Earlier assistant turns called tools: an agent loop is under way. */
  | 'agent_loop'
  /** A code fence in an earlier message of the conversation. */
  | 'history_code'
  /** The request carries an image. */
  | 'image';

export type SignalName =
  | FactSignal
  /** A tool the request offers is named in classifier.device_tools (a voice assistant's device control). */
  | 'device_tools'
  /** Every tool the request offers is named in classifier.chat_tools (a chat app's web search, calculator…). */
  | 'chat_tools';

/** What the classifier reads of a bucket. */
export interface BucketVocabulary {
  keywords?: TermSpec[];
  /** Example prompts of this bucket for the similarity stage (classifier.similarity). */
  examples?: string[];
  signals?: Partial<Record<SignalName, number>>;
  /**
   * The bucket that does this bucket's job when its object is the user's own code (a ``` block
   * of code among the instruction's material, or an editor's code tag): "translate the comments"
   * or "make it faster" above code is a code edit, so the score moves there.
   */
  on_code?: string;
}
